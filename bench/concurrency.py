"""Benchmark 2: many concurrent runs against a slow server, each framework its own way.

``runs`` runs of ``calls`` model calls each (``calls - 1`` tool turns and a final turn) against
one server process that waits ``latency`` seconds per call. A perfect framework needs
``calls × latency`` seconds (the ideal); the benchmark reports the wall time and its ratio to
the ideal. agentkit runs them as asyncio tasks, in one process (``agentkit``) and spread over one
child process per core (``agentkit-processes``, what ``agentkit batch --processes`` does);
mini-swe-agent and smolagents in a thread
pool with one thread per run (mini-swe-agent's batch runner uses a thread pool; smolagents has
no runner of its own). The tool answers in-process (``echo``) so the number is about the
framework, not process spawning; wall time starts after a warm-up run (imports, tables).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench import failed_row, table
from bench.peers import FRAMEWORKS, ServerProcess, run_driver


def run(runs: int = 200, calls: int = 20, latency: float = 0.1, frameworks: list[str] | None = None) -> dict[str, Any]:
    names = frameworks or list(FRAMEWORKS)
    ideal = calls * latency
    results: dict[str, Any] = {}
    with ServerProcess(latency_s=latency) as srv:
        for name in names:
            try:
                out = run_driver(FRAMEWORKS[name], srv.url, steps=calls - 1, concurrency=runs, tool="echo",
                                 tag=f"conc-{name}")
            except Exception as e:  # noqa: BLE001
                results[name] = {"error": str(e)[-800:]}
                continue
            stats = srv.stats()
            served = sum(len(v) for k, v in stats.items() if k.startswith(f"conc-{name}-") and "warmup" not in k)
            done = sum(1 for s in out["statuses"] if s in ("done", "Submitted"))
            results[name] = {"wall_s": out["wall_s"], "ideal_s": ideal, "ratio_to_ideal": out["wall_s"] / ideal,
                             "runs": runs, "runs_ok": done, "calls_served": served, "peak_mb": out["peak_mb"]}
            srv.reset()
    return results


def render(results: dict[str, Any]) -> str:
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append(failed_row(name, r, 6))
        else:
            rows.append([name, r["wall_s"], r["ideal_s"], f"{r['ratio_to_ideal']:.2f}×",
                         f"{r['runs_ok']}/{r['runs']}", r["peak_mb"]])
    return table(["framework", "wall s", "ideal s", "wall/ideal", "runs ok", "peak MB"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench concurrency", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--frameworks", help="comma-separated subset of: " + ", ".join(FRAMEWORKS))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.runs, a.calls, a.latency, a.frameworks.split(",") if a.frameworks else None)
    print(json.dumps(res, indent=2) if a.json else render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
