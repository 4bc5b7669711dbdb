"""``agentkit sandboxes``: housekeeping for Docker sandboxes (list and prune leftovers)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandboxes", help="list or remove leftover Docker sandbox containers",
                       description="Docker sandbox containers carry the label agentkit.sandbox=1; "
                                   "these commands find them (e.g. after a crash) and remove them.")
    p.add_argument("--docker-host", default=None, help="Docker engine URL (default: $DOCKER_HOST)")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    pr = actions.add_parser("prune", help="remove leftover agentkit sandbox containers",
                            description="Removes sandbox containers whose owning process on this host "
                                        "has exited (crashes, kill -9); --all removes every one.")
    pr.add_argument("--all", action="store_true", help="also remove containers of live processes")
    pr.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    pr.set_defaults(func=cmd_prune)
    ls = actions.add_parser("list", help="list agentkit sandbox containers")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _containers(docker_host: str | None) -> list[dict[str, str]]:
    from agentkit.sandboxes.docker import LABEL, _client

    client = _client(docker_host)
    try:
        return [{"id": c.id, "name": c.name, "status": c.status,
                 "image": (c.attrs.get("Config") or {}).get("Image", ""),
                 "created": c.attrs.get("Created", "")}
                for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"})]
    finally:
        client.close()


def cmd_list(args: argparse.Namespace) -> int:
    rows = _containers(args.docker_host)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no agentkit sandbox containers")
    else:
        for r in rows:
            print(f"{r['id'][:12]}  {r['status']:<10} {r['image']:<28} {r['created'][:19]}  {r['name']}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from agentkit.sandboxes.docker import prune

    ids = prune(args.docker_host, all_=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for cid in ids:
        print(f"{verb} {cid[:12]}")
    print(f"{len(ids)} container(s) {verb.replace('would remove', 'would be removed')}")
    return 0
