"""Benchmark 1: framework overhead per step, excluding server time.

The same scripted episode (``steps`` turns, each one trivial shell command, then a final turn)
against one zero-latency server process, driven by agentkit, mini-swe-agent and smolagents
(each in its own process and virtualenv). The server stamps when each request arrived and when
its response left; a step's overhead is the gap between a response leaving and the next
request arriving — parsing, running the tool, building and sending the next request — so no
server time is in it. Each driver process first runs one warm-up episode (imports, first
connection) and is measured on the second; ``rounds`` such processes per framework run
interleaved. Peak memory is the driver process's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench import failed_row, median, percentile, table
from bench.peers import FRAMEWORKS, ServerProcess, run_driver


OVERHEAD_FRAMEWORKS = ["agentkit", "mini-swe-agent", "smolagents"]


def step_gaps(times: list[list[float]]) -> list[float]:
    """Milliseconds between each response leaving and the next request arriving."""
    ts = sorted(times)
    return [(ts[i + 1][0] - ts[i][1]) * 1000.0 for i in range(len(ts) - 1)]


def run(steps: int = 50, frameworks: list[str] | None = None, rounds: int = 3, warmup: bool = True) -> dict[str, Any]:
    """``rounds`` episodes per framework, interleaved (A B C A B C ...) so a busy spell on the
    machine hits every framework alike; medians and p95 are over all measured steps."""
    names = frameworks or OVERHEAD_FRAMEWORKS
    gaps: dict[str, list[float]] = {n: [] for n in names}
    info: dict[str, dict[str, Any]] = {n: {"peak_mb": 0.0, "statuses": [], "episode_s": []} for n in names}
    errors: dict[str, str] = {}
    with ServerProcess(latency_s=0.0) as srv:
        for r in range(rounds):
            for name in names:
                if name in errors:
                    continue
                tag = f"ovh-{name}-r{r}"
                try:
                    out = run_driver(FRAMEWORKS[name], srv.url, steps=steps, warmup=warmup, tag=tag)
                except Exception as e:  # noqa: BLE001 - one peer failing must not hide the others
                    errors[name] = str(e)[-800:]
                    continue
                gaps[name] += step_gaps(srv.stats().get(f"{tag}-0", []))
                info[name]["peak_mb"] = max(info[name]["peak_mb"], out["peak_mb"])
                info[name]["statuses"].append(out["statuses"][0])
                info[name]["episode_s"].append(out["wall_s"])
    results: dict[str, Any] = {}
    for name in names:
        if name in errors:
            results[name] = {"error": errors[name]}
            continue
        g = gaps[name]
        results[name] = {"median_ms": median(g), "p95_ms": percentile(g, 95),
                         "mean_ms": sum(g) / len(g) if g else 0.0, "peak_mb": info[name]["peak_mb"],
                         "steps": len(g), "rounds": rounds, "statuses": info[name]["statuses"],
                         "episode_s": info[name]["episode_s"]}
    ok = {k: v for k, v in results.items() if "median_ms" in v}
    peers = [v["median_ms"] for k, v in ok.items() if k != "agentkit"]
    if "agentkit" in ok and peers:
        ok["agentkit"]["ratio_to_best_peer"] = ok["agentkit"]["median_ms"] / min(peers)
    return results


def render(results: dict[str, Any]) -> str:
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append(failed_row(name, r, 6))
        else:
            rows.append([name, r["median_ms"], r["p95_ms"], r["peak_mb"], r["steps"],
                         f"{r['ratio_to_best_peer']:.2f}× best peer" if "ratio_to_best_peer" in r else ""])
    return table(["framework", "median ms/step", "p95 ms/step", "peak MB", "steps", "note"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3, help="episodes per framework, interleaved")
    ap.add_argument("--frameworks", help="comma-separated subset of: " + ", ".join(FRAMEWORKS))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.steps, a.frameworks.split(",") if a.frameworks else None, rounds=a.rounds)
    print(json.dumps(res, indent=2) if a.json else render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
