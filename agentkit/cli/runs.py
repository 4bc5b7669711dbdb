"""``agentkit runs prune``: free the disk space old runs hold under the default runs folder."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="manage run folders (agentkit runs prune)")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    prune = actions.add_parser(
        "prune", help="delete the workspaces of finished runs, and whole runs older than N days",
        description="Deletes workspace/ and .baseline.git of runs that ended done (their patch, trajectory and "
                    "result stay), and with --older-than DAYS whole run folders older than that. Runs that did "
                    "not end done keep their workspace, so they can be resumed, until they are old enough.")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="also delete whole runs older than this")
    prune.add_argument("--root", help="the runs folder (default: $XDG_DATA_HOME/agentkit/runs)")
    prune.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    prune.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agentkit.app.runs import prune_runs
    from agentkit.app.runner import runs_root

    root = Path(args.root).expanduser() if args.root else runs_root()
    actions = prune_runs(root, older_than_days=args.older_than, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for a in actions:
        print(f"{verb} {a.what}: {a.path} ({a.bytes / 1e6:.1f} MB)")
    total = sum(a.bytes for a in actions)
    print(f"{len(actions)} item(s) {verb} under {root}, {total / 1e6:.1f} MB")
    return 0
