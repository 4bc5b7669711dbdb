"""``agentkit batch TASKS.jsonl``: many runs, N at a time, resumable, with a global cost budget."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any, Awaitable, TypeVar

from agentkit.cli.common import (DEFAULT_MAX_COST, add_limit_flags, add_model_flags, add_sandbox_flags, cost_limit,
                                 print_json)
from agentkit.errors import ConfigError

T = TypeVar("T")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="run many code/research tasks from a JSONL file",
                       description="Each line: {\"id\", \"preset\": \"code\"|\"research\", \"task\", \"repo\"?, "
                                   "\"test_cmd\"?, \"setup_cmd\"?, \"env\"?} (setup_cmd and env: code tasks; a "
                                   "task's own win over --setup-cmd and --env). Finished ids in OUT/results*.jsonl "
                                   "are skipped on re-runs.")
    p.add_argument("tasks", metavar="TASKS.jsonl")
    p.add_argument("--workers", type=int, default=2, help="tasks run at the same time (default: 2)")
    p.add_argument("--processes", type=int, default=1,
                   help="run the batch as this many `--shard I/N` child processes, e.g. one per core when hundreds "
                        "of tasks run at once and one Python process becomes the bottleneck (default: 1)")
    p.add_argument("--shard", type=_shard, metavar="I/N",
                   help="run only the I-th of N shares of the tasks (every N-th task, from the I-th), with its "
                        "own ledger OUT/results.shard-I.jsonl; what each --processes child runs")
    p.add_argument("--out", help="output folder (default: runs/batch-<file name>)")
    p.add_argument("--ray", metavar="ADDRESS", help="run each task as a Ray task on this cluster "
                                                   "(\"auto\", \"ray://host:10001\", or \"local\" to start one; "
                                                   "default: none, tasks run in this process)")
    p.add_argument("--search-backend", help="search backend of research tasks (default: duckduckgo)")
    p.add_argument("--max-searches", type=int, help="most search calls per research task (default: no limit)")
    p.add_argument("--fetch-allow", action="append", default=[], metavar="HOST|CIDR",
                   help="let fetch reach this private host or network (repeatable)")
    p.add_argument("--retry-errors", dest="retry_errors", action="store_true", default=True,
                   help="run again the tasks that ended in an error a re-run can fix (a rejected key, the network, "
                        "a rate limit, a crashed worker) in an earlier run of this batch (default)")
    p.add_argument("--no-retry-errors", dest="retry_errors", action="store_false",
                   help="count every errored task as finished")
    p.add_argument("--no-preflight", dest="preflight", action="store_false", default=True,
                   help="skip the one-token request that checks the key and the endpoint before the first task")
    p.add_argument("--quiet", action="store_true", help="no per-task lines")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_model_flags(p)
    add_sandbox_flags(p, setup=True, setup_where="from each code task's workspace, before its agent starts")
    add_limit_flags(p, cost_help="stop launching tasks once the batch has spent this many US dollars, each task "
                                 "spending at most what is left; none: no cap at all (default: no batch cap, and "
                                 f"each task stops at ${DEFAULT_MAX_COST:g} when the model has a known price)",
                    steps_help="stop each task after this many model calls (default: 50)")
    p.set_defaults(func=cmd_batch)


def _shard(text: str) -> tuple[int, int]:
    from agentkit.app.batch import parse_shard

    try:
        return parse_shard(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


async def _until_sigterm(work: Awaitable[T]) -> T:
    """``work``, cancelled by SIGTERM (how a --processes parent stops its shards) as Ctrl-C would."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def cmd_batch(args: argparse.Namespace) -> int:
    out = Path(args.out or f"runs/batch-{Path(args.tasks).stem}")
    processes = 1 if args.shard else args.processes  # a shard is one of a --processes parent's children
    if processes < 1 or args.workers < 1:
        raise ConfigError(f"--{'processes' if processes < 1 else 'workers'} must be at least 1")
    if processes > 1 and args.ray:
        raise ConfigError("--processes spreads tasks over this machine's cores and cannot be combined with "
                          "--ray (Ray places the tasks)")
    from rich.console import Console

    from agentkit.app.batch import INDEX, ledger_path, load_tasks, preflight, run_batch, run_shards, summary_table
    from agentkit.app.runner import RunOptions

    ledgers = out / "results*.jsonl" if processes > 1 else ledger_path(out, args.shard)
    args.resume_hint = f"finished tasks are kept in {ledgers}; run the same command again to resume the rest"
    tasks = load_tasks(args.tasks)
    max_cost, task_cap = cost_limit(args.max_cost)  # the batch's cap; each task's own when there is none
    base = RunOptions(default_max_cost=task_cap, model=args.model, provider=args.provider, base_url=args.base_url,
                      thinking=args.thinking,
                      request_timeout=args.request_timeout, sandbox=args.sandbox, image=args.image,
                      network=bool(args.network), tool_mode=getattr(args, "tool_mode", None),
                      template=getattr(args, "template", None), price=getattr(args, "price", None),
                      max_steps=args.max_steps,
                      search_backend=args.search_backend, max_searches=args.max_searches,
                      fetch_allow=args.fetch_allow, setup_cmd=args.setup_cmd, env=dict(args.env), progress="quiet")
    stream = sys.stderr if args.json else sys.stdout
    if max_cost is not None:  # a budget needs prices: refuse here, not once per task
        from agentkit.app.runner import DEFAULT_MODEL, check_price

        check_price(base.model_copy(update={"max_cost": max_cost}), base.model or DEFAULT_MODEL)
    if not args.quiet and not args.shard:
        print(f"limits: {args.max_steps or 50} steps per task, " + (
            f"the batch stops launching tasks at ${max_cost:.2f}" if max_cost is not None else
            f"each task stops at ${task_cap:.2f} when the model has a known price (--max-cost USD caps the "
            "batch instead, none lifts it)" if task_cap is not None else "no cost cap"), file=stream, flush=True)
    if args.preflight and not args.shard:  # a --processes child: its parent checked already
        asyncio.run(preflight(base))

    from agentkit.cli import cli_words

    parser = getattr(args, "command_parser", None)  # the ledger keeps the library's words; this says the flags

    def on_result(r: dict[str, Any]) -> None:
        if args.quiet:
            return
        test = r.get("test")
        extra = f" tests {'passed' if test.get('passed') else 'failed'}" if isinstance(test, dict) else ""
        cost = r.get("cost_usd")
        error = f" — {cli_words(r['error'], parser)}" if r.get("error") else ""
        print(f"{r['id']}: {r.get('status')}{extra} ({r.get('steps', 0)} steps, "
              f"{'?' if cost is None else f'${cost:.4f}'})" + error, file=stream, flush=True)

    if processes > 1:
        summary = run_shards([*args.argv, "--no-preflight"], tasks, out, processes, max_cost=max_cost,
                             retry_errors=args.retry_errors, on_result=on_result)
    else:
        try:
            summary = asyncio.run(_until_sigterm(run_batch(
                tasks, base, out, workers=args.workers, max_cost=max_cost, ray_address=args.ray,
                shard=args.shard, on_result=on_result, retry_errors=args.retry_errors)))
        except asyncio.CancelledError:  # SIGTERM: the runs ended "cancelled" and resume on a re-run
            return 143
    if args.json:
        print_json({**summary.model_dump(), "pass_rate": summary.pass_rate, "out": str(out)})
    elif not args.quiet:
        Console(file=stream).print(summary_table(summary))
        if summary.cost_stop:
            print(f"cost budget ${max_cost} reached: {summary.not_started} task(s) not started; "
                  "raise --max-cost and run the same command again to continue", file=stream)
        if summary.retry_next:
            print(f"{summary.retry_next} task(s) ended in an error a re-run can fix; they will run again "
                  "when you run the same command" + ("" if args.retry_errors else " with --retry-errors"),
                  file=stream)
        print(f"results: {ledgers}", file=stream)
        if not args.shard:
            print(f"index:   {out / INDEX}", file=stream)
    bad = summary.finished - summary.statuses.get("done", 0)
    failed_tests = summary.tests_run - summary.tests_passed
    return 0 if (bad == 0 and failed_tests == 0 and summary.not_started == 0) else 1
