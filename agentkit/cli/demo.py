"""``agentkit demo [code|research]``: the offline demos (no key, no network)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from agentkit.cli.common import progress_mode, progress_stream


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo: a replayed model fixes a bug (or researches) with the real tools",
                       description="Runs with no API key and no network. `agentkit demo` fixes a bug in a bundled "
                                   "repo; `agentkit demo research` answers a question from pages on 127.0.0.1.")
    p.add_argument("which", nargs="?", choices=["code", "research"], default="code")
    p.add_argument("--out", help="output folder (default: runs/<timestamp>-demo-<which>/)")
    p.add_argument("--sandbox", choices=["local", "docker"], default="local",
                   help="where commands run (default: local)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--json", action="store_true", help="print result.json to stdout when done")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from agentkit import demo
    from agentkit.cli.run import _finish
    from agentkit.app.runner import default_out, run_task
    from agentkit.app.progress import Progress

    out = Path(args.out) if args.out else default_out(f"demo {args.which}")
    progress = Progress(progress_mode(args), stream=progress_stream(args), label=f"demo {args.which}")
    if args.which == "code":
        opts = demo.code_options(out, sandbox=args.sandbox, progress=progress_mode(args))
        result = asyncio.run(run_task(opts, progress))
    else:
        with demo.research_site(out) as site:
            opts = demo.research_options(out, site, sandbox=args.sandbox, progress=progress_mode(args))
            result = asyncio.run(run_task(opts, progress))
    return _finish(args, result)
