"""What every benchmark driver shares (stdlib only: drivers run in the peers' own virtualenvs).

Drivers are run as scripts, so this module is imported by its plain name from the same folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited over exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def driver_args(default_tag: str) -> argparse.ArgumentParser:
    """The command line every driver takes; a driver may add its own options before parsing."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--tool", default="bash", choices=["bash", "echo"])
    ap.add_argument("--warmup", action="store_true")
    ap.add_argument("--tag", default=default_tag)
    return ap


def report(framework: str, wall_s: float, statuses: list[str]) -> None:
    print(json.dumps({"framework": framework, "wall_s": wall_s, "peak_mb": peak_rss_mb(), "statuses": statuses}))


def run_threaded(framework: str, run_one: Callable[[str, int, str, str], str], a: argparse.Namespace) -> None:
    """Run ``a.concurrency`` episodes on a thread pool (how the sync peers run many at once)."""
    logging.disable(logging.CRITICAL)
    if a.warmup:
        run_one(a.base, a.steps, f"{a.tag}-warmup", a.tool)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
        statuses = list(pool.map(lambda i: run_one(a.base, a.steps, f"{a.tag}-{i}", a.tool), range(a.concurrency)))
    report(framework, time.perf_counter() - t0, statuses)
