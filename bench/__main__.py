"""``python -m bench all`` runs every benchmark and writes bench/results/; ``python -m bench NAME
[options]`` runs one (``--json`` for JSON). NAME: overhead, concurrency, sandbox, extraction, tokens, cache, index
(``index`` is not part of ``all``: at its default 100,000 documents it takes minutes)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from typing import Any

BENCHMARKS = ("overhead", "concurrency", "sandbox", "extraction", "tokens", "cache")
ALONE = ("index",)  # run by name only (too slow for `all`)
# The options `all` uses, and the command that reproduces each number alone.
COMMANDS = {name: f"python -m bench {name}" for name in BENCHMARKS + ALONE}


def run_all(names: tuple[str, ...] = BENCHMARKS, options: dict[str, dict[str, Any]] | None = None,
            out_dir: str = "bench/results") -> dict[str, Any]:
    """Run the named benchmarks (a failing one is recorded, never fatal) and write the report."""
    from bench import report

    results: dict[str, Any] = {}
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.{name}")
            results[name] = mod.run(**(options or {}).get(name, {}))
        except Exception as e:  # noqa: BLE001 - e.g. no Docker for the sandbox table
            traceback.print_exc()
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    paths = report.write(results, out_dir, COMMANDS)
    return {"results": results, "paths": {k: str(v) for k, v in paths.items()}}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        ap = argparse.ArgumentParser(prog="python -m bench all")
        ap.add_argument("--out", default="bench/results")
        ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
        a = ap.parse_args(rest)
        names = tuple(a.only.split(",")) if a.only else BENCHMARKS
        done = run_all(names, out_dir=a.out)
        print(open(done["paths"]["report"]).read())
        print("wrote: " + ", ".join(done["paths"].values()))
        return 0
    if name not in BENCHMARKS + ALONE:
        print(f"unknown benchmark {name!r}; use all or one of: {', '.join(BENCHMARKS + ALONE)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(f"bench.{name}").main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
