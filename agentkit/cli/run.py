"""``agentkit code``, ``agentkit research`` and ``agentkit resume``: one agent run from the terminal."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agentkit.cli.common import (add_limit_flags, add_model_flags, add_output_flags, add_request_timeout_flag,
                                 add_sandbox_flags, cost_limit, env_pair, print_json, progress_mode, progress_stream)


def register(sub: argparse._SubParsersAction) -> None:
    code = sub.add_parser("code", help="fix or change code in a repository (non-thinking, shell + editor)",
                          description="Run the code agent on a copy of a repository and write a patch.")
    code.add_argument("task", metavar="TASK", help="what to do, as text, @FILE or a GitHub issue URL "
                                                   "(https://github.com/OWNER/REPO/issues/N; GITHUB_TOKEN, GITHUB_API_URL)")
    code.add_argument("--repo", default=".", help="the repository to work on (default: current directory)")
    code.add_argument("--in-place", action="store_true", help="edit the repository itself instead of a copy")
    code.add_argument("--keep-workspace", action="store_true",
                      help="keep the run's working copy after it ends done (default: removed; the patch stays)")
    code.add_argument("--max-copy-size", type=_size, default="2G", metavar="SIZE",
                      help="largest non-git folder copied as the workspace, e.g. 10G, or none "
                           "(default: 2G, and one file per 10 kB of it: 200,000; git repos are cloned, not copied)")
    code.add_argument("--test-cmd", help="command run in the sandbox at the end; its result goes in result.json")
    code.add_argument("--confirm", action="store_true",
                      help="ask on the terminal before each shell command and file edit (shown as a diff): "
                           "yes / no / always for this tool / edit the command / stop")
    add_model_flags(code, "off")
    add_sandbox_flags(code, setup=True)
    add_limit_flags(code)
    add_output_flags(code)
    code.set_defaults(func=cmd_code)

    res = sub.add_parser("research", help="answer a question with web search and citations (thinking)",
                         description="Run the search agent; the answer with [citation:N] goes to answer.md.")
    res.add_argument("question", metavar="QUESTION", help="the question, as text or @FILE")
    res.add_argument("--python", action="store_true", help="also give the agent a python tool (runs in the sandbox)")
    res.add_argument("--search-backend", help="duckduckgo (default) | searxng:URL | fixture:FILE.json | local:DIR "
                                              "(a folder of documents), or several joined by commas")
    res.add_argument("--max-searches", type=int, help="most search calls in the run (default: no limit)")
    res.add_argument("--fetch-allow", action="append", default=[], metavar="HOST|CIDR",
                     help="let fetch reach this private host or network (repeatable)")
    add_model_flags(res, "on")
    add_sandbox_flags(res)
    add_limit_flags(res)
    add_output_flags(res)
    res.set_defaults(func=cmd_research)

    rs = sub.add_parser("resume", help="continue a run from its trajectory.jsonl",
                        description="Continue a stopped or limited run with the same preset, model and settings.")
    rs.add_argument("trajectory", metavar="TRAJ", help="the run's trajectory.jsonl")
    rs.add_argument("--model", help="continue with another model, e.g. replay:FILE (default: the run's own)")
    rs.add_argument("--provider", help="continue with another provider (default: the run's own)")
    rs.add_argument("--base-url", help="the endpoint; a trajectory's own is used only when it is its provider's "
                                        "(your API key goes there), so repeat it for any other (default: the run's own "
                                        "when that is its provider's)")
    rs.add_argument("--repo", help="the repository, needed again for a run that edited it in place "
                                   "(default: the run's own workspace/ folder)")
    rs.add_argument("--test-cmd", help="run this at the end (default: the run's own, which runs only in an "
                                       "isolated sandbox)")
    rs.add_argument("--search-backend", help="confirm or change the trajectory's search backend "
                                             "(default: duckduckgo)")
    rs.add_argument("--fetch-allow", action="append", default=[], metavar="HOST|CIDR",
                    help="confirm or change the private hosts fetch may reach (repeatable)")
    rs.add_argument("--network", action="store_true", default=None,
                    help="confirm that the sandbox may reach the network (a trajectory's own setting is not taken)")
    rs.add_argument("--env", action="append", default=[], type=env_pair, metavar="KEY=VALUE",
                    help="the sandbox's environment (repeatable); a trajectory's own is not taken, so a run "
                         "that set variables needs them again (default: none)")
    add_request_timeout_flag(rs)
    add_limit_flags(rs, cost_help="stop the run after this many US dollars in all, or none for no cap "
                                  "(default: the run's own cap)",
                    steps_help="stop after this many model calls in all (default: the run's own limit)")
    rs.add_argument("--quiet", action="store_true", help="no progress display")
    rs.add_argument("--json", action="store_true", help="print result.json to stdout when done")
    rs.set_defaults(func=cmd_resume)


def _size(text: str) -> int | None:
    from agentkit.app.workspace import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _options(args: argparse.Namespace, preset: str, task: str, **extra: Any) -> Any:
    from agentkit.app.runner import RunOptions

    max_cost, default_max_cost = cost_limit(args.max_cost)
    return RunOptions(preset=preset, task=task, model=args.model, provider=args.provider, base_url=args.base_url,
                      thinking=args.thinking, request_timeout=args.request_timeout, sandbox=args.sandbox,
                      image=args.image, network=bool(args.network), max_steps=args.max_steps,
                      max_cost=max_cost, default_max_cost=default_max_cost, out=args.out, progress=progress_mode(args),
                      tool_mode=getattr(args, "tool_mode", None), template=getattr(args, "template", None),
                      price=getattr(args, "price", None), **extra)


def _with_out(args: argparse.Namespace, opts: Any) -> Any:
    """The run folder chosen up front, so Ctrl-C can say which trajectory to resume."""
    from pathlib import Path

    from agentkit.app.runner import TRAJECTORY, default_out, read_task

    if not opts.out:  # the per-user runs folder: say where, before anything else happens
        opts = opts.model_copy(update={"out": str(default_out(read_task(opts.task)))})
        print(f"agentkit: run folder: {opts.out}", file=progress_stream(args), flush=True)
    args.resume_hint = f"continue with: agentkit resume {Path(opts.out) / TRAJECTORY}"
    return opts


def _finish(args: argparse.Namespace, result: dict[str, Any]) -> int:
    from agentkit.app.runner import exit_code

    try:
        if args.json:
            print_json(result)
        elif args.quiet:  # still where the run is and how it ended
            print(f"{result['status']}: {result['out']}", flush=True)
        else:
            _print_summary(result, getattr(args, "command_parser", None))
    except BrokenPipeError:  # `agentkit ... | head`: the run is done; its result is on disk
        from agentkit.cli import quiet_stdout

        quiet_stdout()
    return exit_code(result)


def _print_summary(result: dict[str, Any], parser: argparse.ArgumentParser | None = None) -> None:
    from pathlib import Path

    out = Path(result["out"])
    tokens = result.get("tokens") or {}
    cost = result.get("cost_usd")
    iso, hits = result.get("isolation"), result.get("cache_hit_share")
    print(f"\nstatus: {result['status']}  steps: {result['steps']}  tokens: {tokens.get('total', 0):,}  "
          f"cost: {'?' if cost is None else f'${cost:.4f}'}" + (f"  cache hits: {hits:.0%}" if hits is not None else "")
          + (f"  isolation: {iso}" if iso else ""))
    if result.get("error"):  # stored in the library's words; said here with the flags
        from agentkit.cli import cli_words

        print(f"error: {cli_words(result['error'], parser)}")
    test = result.get("test")
    if test:
        print(f"tests: {'passed' if test['passed'] else 'FAILED'} (exit {test['exit_code']}): {test['cmd']}")
    if result.get("preset") == "research" and result.get("answer"):
        from agentkit.app.runner import answer_markdown

        print("\n" + answer_markdown(result["answer"], result.get("sources") or []).rstrip() + "\n")
    for label, key in (("answer", "answer"), ("patch", "patch"), ("trajectory", "trajectory"), ("view", "html")):
        name = result.get("files", {}).get(key)
        if name:
            print(f"{label + ':':12}{out / name}")


def _progress(args: argparse.Namespace) -> Any:
    from agentkit.app.progress import Progress

    mode = progress_mode(args)
    if getattr(args, "confirm", False) and mode == "auto":
        mode = "plain"  # a live line would redraw over the confirmation prompts
    return Progress(mode, stream=progress_stream(args))


def cmd_code(args: argparse.Namespace) -> int:
    import sys

    from agentkit.app.github import read_issue_task
    from agentkit.app.runner import run_task
    from agentkit.errors import ConfigError

    if args.confirm and not sys.stdin.isatty():
        raise ConfigError("--confirm asks on the terminal, but stdin is not one; run it in a terminal "
                          "or drop --confirm")
    opts = _options(args, "code", read_issue_task(args.task), repo=args.repo, in_place=args.in_place,
                    test_cmd=args.test_cmd, confirm=args.confirm, keep_workspace=args.keep_workspace,
                    max_copy_bytes=args.max_copy_size, setup_cmd=args.setup_cmd, env=dict(args.env))
    opts = _with_out(args, opts)
    return _finish(args, asyncio.run(run_task(opts, _progress(args))))


def cmd_research(args: argparse.Namespace) -> int:
    from agentkit.app.runner import run_task

    opts = _options(args, "research", args.question, python=args.python, search_backend=args.search_backend,
                    max_searches=args.max_searches, fetch_allow=args.fetch_allow)
    opts = _with_out(args, opts)
    return _finish(args, asyncio.run(run_task(opts, _progress(args))))


def cmd_resume(args: argparse.Namespace) -> int:
    from agentkit.app.runner import resume_task

    overrides = {"model": args.model, "provider": args.provider, "base_url": args.base_url,
                 "request_timeout": args.request_timeout, "network": args.network,
                 "max_steps": args.max_steps, "max_cost": args.max_cost, "repo": args.repo,
                 "test_cmd": args.test_cmd, "search_backend": args.search_backend, "fetch_allow": args.fetch_allow,
                 "env": dict(args.env) or None}
    args.resume_hint = f"continue with: agentkit resume {args.trajectory}"
    return _finish(args, asyncio.run(resume_task(args.trajectory, overrides, _progress(args))))
