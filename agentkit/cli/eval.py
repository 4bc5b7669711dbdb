"""``agentkit eval swebench INSTANCES`` and ``agentkit eval qa QA.jsonl``: benchmark runs on the batch
machinery, with a report."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from agentkit.cli.common import add_limit_flags, add_model_flags, cost_limit, print_json
from agentkit.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="benchmark runs: SWE-bench instances, QA sets",
                       description="Run a benchmark with the batch machinery and write a report.")
    kinds = p.add_subparsers(dest="eval_kind", metavar="KIND")

    s = kinds.add_parser("swebench", help="SWE-bench-format instances, each in its own image",
                         description="Each instance runs the code agent in its environment image (the repo at "
                                     "/testbed); OUT/preds.jsonl is what `python -m swebench.harness.run_evaluation "
                                     "--predictions_path` reads. Finished instances are skipped on re-runs.")
    s.add_argument("instances", metavar="INSTANCES", help="instances as .json, .jsonl or .parquet")
    s.add_argument("--filter", metavar="REGEX", help="only instance ids matching this regular expression")
    s.add_argument("--slice", metavar="A:B", help="only these instances (after --shuffle and --filter), e.g. 0:10")
    s.add_argument("--shuffle", action="store_true", help="shuffle the instances (by --seed) before picking")
    s.add_argument("--seed", type=int, default=42, help="seed of --shuffle (default: 42)")
    s.add_argument("--image-template", metavar="FORMAT",
                   help="the image of an instance, with the fields {instance_id} and {docker_id} (the id with __ "
                        "written _1776_), e.g. 'myreg/swe:{docker_id}' (default: "
                        "swebench/sweb.eval.x86_64.{docker_id}:latest)")
    s.add_argument("--pull", choices=["missing", "never", "always"], default="missing",
                   help="pull images: when missing (default), never, or always")
    s.add_argument("--evaluate", action="store_true",
                   help="for instances with a test_cmd: apply test_patch, run the tests, mark resolved ones")
    s.add_argument("--test-timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="most time for one instance's tests (default: 1800)")
    s.add_argument("--model-name", help="model_name_or_path in preds.jsonl (default: the model)")
    s.add_argument("--network", action="store_true", help="let the agent's commands reach the network")
    _common(s, "runs/swebench-<file name>")
    s.set_defaults(func=cmd_swebench)

    q = kinds.add_parser("qa", help="a QA set answered by the research agent, scored",
                         description="Each line: {\"id\", \"question\", \"answer\", \"aliases\"?}. Scores: exact match "
                                     "and token F1 (SQuAD normalization, citations removed), optionally an LLM judge.")
    q.add_argument("qa", metavar="QA.jsonl")
    q.add_argument("--search-backend", help="search backend(s), e.g. local:DIR or local:DIR,duckduckgo "
                                                  "(default: duckduckgo)")
    q.add_argument("--max-searches", type=int, help="most search calls per question (default: no limit)")
    q.add_argument("--fetch-allow", action="append", default=[], metavar="HOST|CIDR",
                   help="let fetch reach this private host or network (repeatable)")
    q.add_argument("--judge-model", metavar="MODEL",
                   help="an LLM judge (a model name, or replay:FILE) that grades each answer against the gold one")
    q.add_argument("--judge-provider", help="provider of the judge model (default: from its name)")
    q.add_argument("--judge-base-url", help="endpoint of the judge model (default: the judge's provider's own)")
    _common(q, "runs/qa-<file name>")
    q.set_defaults(func=cmd_qa)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--workers", type=int, default=2, help="items run at the same time (default: 2)")
    p.add_argument("--out", help=f"output folder (default: {default_out})")
    p.add_argument("--quiet", action="store_true", help="no per-item lines")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_model_flags(p)
    add_limit_flags(p, cost_help="stop launching items once the run has spent this many US dollars, each item "
                                 "spending at most what is left (default: none, no cap)")


def _base(args: argparse.Namespace, **kw: Any) -> Any:
    from agentkit.app.runner import RunOptions

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    return RunOptions(model=args.model, provider=args.provider, base_url=args.base_url, thinking=args.thinking,
                      request_timeout=args.request_timeout, max_steps=args.max_steps, progress="quiet", **kw)


def _line(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def cmd_swebench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agentkit.app import eval_swebench as swe

    out = Path(args.out or f"runs/swebench-{Path(args.instances).stem}")
    if args.slice:
        try:
            swe.parse_slice(args.slice)
        except ValueError as e:
            raise ConfigError(f"--slice {e}") from None
    instances = swe.select(swe.load_instances(args.instances), filter=args.filter, slice_=args.slice,
                           shuffle=args.shuffle, seed=args.seed)
    if not instances:
        raise ConfigError(f"{args.instances}: no instance left after --filter/--slice")
    if args.image_template:
        swe.image_name(instances[0], args.image_template)  # a bad template is a usage error, before any run
    base = _base(args, sandbox="docker", network=bool(args.network))
    opts = swe.SweOptions(image_template=args.image_template, pull=args.pull, evaluate=args.evaluate,
                          test_timeout=args.test_timeout, model_name=args.model_name)
    args.resume_hint = f"finished instances are kept in {out / 'results.jsonl'}; run the same command again to resume"

    def on_result(r: dict[str, Any]) -> None:
        ev = r.get("eval") or {}
        res = {True: " resolved", False: " not resolved"}.get(ev.get("resolved"), "")
        _line(args, f"{r['id']}: {r.get('status')}{res} ({r.get('steps', 0)} steps, ${float(r.get('cost_usd') or 0):.4f})"
              + (f" — {r['error']}" if r.get("error") else ""))

    report = asyncio.run(swe.run_swebench(instances, base, out, opts, workers=args.workers,
                                          max_cost=cost_limit(args.max_cost)[0], on_result=on_result))
    if args.json:
        print_json({**report, "out": str(out)})
    elif not args.quiet:
        Console().print(swe.report_table(report))
        print(f"predictions: {out / swe.PREDS}\nreport: {out / swe.REPORT}")
    failed = report["submitted"] < report["total"] or report["error_ids"]
    if args.evaluate:
        failed = failed or report["resolved"] < report["total"]
    return 1 if failed else 0


def cmd_qa(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agentkit.app import eval_qa
    from agentkit.app.batch import read_results

    out = Path(args.out or f"runs/qa-{Path(args.qa).stem}")
    items = eval_qa.load_qa(args.qa)
    if not items:
        raise ConfigError(f"{args.qa}: no questions in the file")
    base = _base(args, search_backend=args.search_backend, max_searches=args.max_searches,
                 fetch_allow=args.fetch_allow)
    qa = eval_qa.QAOptions(judge_model=args.judge_model, judge_provider=args.judge_provider,
                           judge_base_url=args.judge_base_url)
    args.resume_hint = f"finished questions are kept in {out / 'results.jsonl'}; run the same command again to resume"

    def on_result(r: dict[str, Any]) -> None:
        _line(args, f"{r['id']}: {r.get('status')} EM {int(bool(r.get('exact_match')))} F1 {float(r.get('f1') or 0):.2f}"
              + (f" — {r['error']}" if r.get("error") else ""))

    report = asyncio.run(eval_qa.run_qa(items, base, out, qa, workers=args.workers,
                                        max_cost=cost_limit(args.max_cost)[0], on_result=on_result))
    if args.json:
        print_json({**report, "out": str(out)})
    elif not args.quiet:
        by_id = {r["id"]: r for r in read_results(out)}
        Console().print(eval_qa.report_table(report, [by_id[i.id] for i in items if i.id in by_id]))
        print(f"results: {out / 'results.jsonl'}\nreport: {out / eval_qa.REPORT}")
    return 0 if report["answered"] == report["total"] else 1
