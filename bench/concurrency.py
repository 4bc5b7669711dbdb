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

Each framework runs ``rounds`` times (fresh driver process each time) and the row reports the
median wall time with the range: a 2-core machine shared with other work moves one round by 10%
or more. A framework whose first round took over ``SLOW_S`` seconds runs once; its spread does
not change what the row says.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from bench import failed_row, table
from bench.peers import FRAMEWORKS, ServerProcess, run_driver

SLOW_S = 30.0


def run(runs: int = 200, calls: int = 20, latency: float = 0.1, frameworks: list[str] | None = None,
        rounds: int = 3) -> dict[str, Any]:
    names = frameworks or list(FRAMEWORKS)
    ideal = calls * latency
    results: dict[str, Any] = {}
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    with ServerProcess(latency_s=latency) as srv:
        for name in names:
            walls: list[float] = []
            done, served = runs, runs * calls  # lowered to the worst round's counts
            try:
                for r in range(rounds):
                    tag = f"conc-{name}-r{r}"
                    out = run_driver(FRAMEWORKS[name], srv.url, steps=calls - 1, concurrency=runs, tool="echo",
                                     tag=tag)
                    stats = srv.stats()
                    served = min(served, sum(len(v) for k, v in stats.items()
                                             if k.startswith(f"{tag}-") and "warmup" not in k))
                    done = min(done, sum(1 for s in out["statuses"] if s in ("done", "Submitted")))
                    srv.reset()
                    walls.append(out["wall_s"])
                    if out["wall_s"] > SLOW_S:
                        break
            except Exception as e:  # noqa: BLE001
                results[name] = {"error": str(e)[-800:]}
                continue
            wall = statistics.median(walls)
            results[name] = {"wall_s": wall, "wall_s_rounds": walls, "ideal_s": ideal, "ratio_to_ideal": wall / ideal,
                             "runs": runs, "runs_ok": done, "calls_served": served, "peak_mb": out["peak_mb"]}
    return results


def render(results: dict[str, Any]) -> str:
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append(failed_row(name, r, 6))
        else:
            walls = r.get("wall_s_rounds") or [r["wall_s"]]
            spread = f"{min(walls):.2f}–{max(walls):.2f}" if len(walls) > 1 else "1 round"
            rows.append([name, r["wall_s"], spread, r["ideal_s"], f"{r['ratio_to_ideal']:.2f}×",
                         f"{r['runs_ok']}/{r['runs']}", r["peak_mb"]])
    return table(["framework", "wall s (median)", "range", "ideal s", "wall/ideal", "runs ok", "peak MB"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench concurrency", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--frameworks", help="comma-separated subset of: " + ", ".join(FRAMEWORKS))
    ap.add_argument("--rounds", type=int, default=3, help="runs per framework; the row is their median")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.runs, a.calls, a.latency, a.frameworks.split(",") if a.frameworks else None, a.rounds)
    print(json.dumps(res, indent=2) if a.json else render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
