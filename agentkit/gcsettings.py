"""Garbage-collector settings for a process that runs many agents at once."""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

MANY_RUNS_GEN0 = 100_000


@contextlib.contextmanager
def fewer_gc_passes(gen0: int = MANY_RUNS_GEN0) -> Iterator[None]:
    """Run young-generation collections less often while many runs are in flight.

    Every run keeps its conversation alive, so with hundreds of runs each young collection walks
    many survivors; at CPython's default (a collection every 700 new objects) that was about a
    tenth of the CPU of ``python -m bench concurrency``. Cycles are still collected, in larger
    batches. The previous thresholds come back on exit.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(gen0, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
