"""agentkit's benchmarks: ``python -m bench all`` (or one of them by name).

Each benchmark module exposes ``run(**options) -> dict`` and ``main(argv=None)``; ``main``
prints a table, or the JSON with ``--json``. Numbers are measured, never asserted: the test
suite only checks that each benchmark runs (tests/test_bench_smoke.py).
"""

from __future__ import annotations

import statistics
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks; 0.0 for no values."""
    xs = sorted(values)
    if not xs:
        return 0.0
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table (numbers formatted compactly)."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def failed_row(name: str, result: dict, width: int) -> list[object]:
    """A table row for a framework whose run failed: its name, "failed" and the error's last line."""
    return [name, "failed", *([""] * (width - 3)), result["error"].splitlines()[-1][:80]]
