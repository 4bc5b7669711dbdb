"""``agentkit config show``: the effective settings and where each came from."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show the effective settings (flags > env > agentkit.toml > user config)",
                       description="Settings come from AGENTKIT_* variables, the repo's agentkit.toml and "
                                   "$XDG_CONFIG_HOME/agentkit/config.toml, strongest first; flags beat all.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="print each setting, its value and its source")
    show.add_argument("--repo", default=".", help="the repository whose agentkit.toml counts (default: .)")
    show.set_defaults(func=cmd_show)
    p.set_defaults(func=cmd_show, repo=".")


def cmd_show(args: argparse.Namespace) -> int:
    from agentkit.config import REPO_FILE, describe, load_settings, user_config_path

    print(f"# files read: {user_config_path()} (user), {args.repo.rstrip('/')}/{REPO_FILE} (repo), when present")
    print(describe(load_settings(args.repo)))
    return 0
