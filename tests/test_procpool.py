"""ProcessPool: real child interpreters answering over pipes — spreading, errors, deaths, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentkit.procpool import ProcessPool, WorkerDied, WorkerFailed

ROOT = str(Path(__file__).resolve().parent.parent)
TARGET = "tests.procpool_targets:work"


def _pool(processes: int = 2) -> ProcessPool:
    return ProcessPool(TARGET, processes, path=[ROOT])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it has exited all the same
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_items_spread_evenly_and_run_concurrently_inside_each_child() -> None:
    async with _pool(2) as pool:
        results = await asyncio.gather(*(pool.submit({"do": "overlap", "sleep": 0.3}) for _ in range(20)))
        pids = {r["pid"] for r in results}
        assert len(pids) == 2 and os.getpid() not in pids
        assert sorted(sum(r["pid"] == p for r in results) for p in pids) == [10, 10]
        # each child held all ten of its items at once: they overlap in its event loop
        assert max(r["most"] for r in results) == 10
        assert sorted(await pool.broadcast({"do": "pid"})) == sorted(pids)


async def test_values_round_trip_as_json() -> None:
    value = {"text": "héllo \u2028 \"quoted\"\n", "n": [1, 2.5, None, True], "big": "x" * 200_000}
    async with _pool(1) as pool:
        assert await pool.submit({"do": "echo", "value": value}) == value


async def test_a_raising_target_is_reported_and_the_child_keeps_serving() -> None:
    async with _pool(1) as pool:
        pid = await pool.submit({"do": "pid"})
        with pytest.raises(WorkerFailed, match="bad value 7") as err:
            await pool.submit({"do": "raise", "value": 7})
        assert err.value.error_type == "ValueError"
        with pytest.raises(WorkerFailed, match="not JSON serializable"):
            await pool.submit({"do": "not-json"})
        assert await pool.submit({"do": "pid"}) == pid


async def test_what_a_target_prints_cannot_reach_the_protocol(capfd: pytest.CaptureFixture[str]) -> None:
    async with _pool(1) as pool:
        assert await pool.submit({"do": "print"}) == "clean"
    err = capfd.readouterr().err
    assert "noise on stdout" in err and '"forged"' in err  # it went to stderr, not to the parent's reader


async def test_a_dead_child_fails_only_its_items_and_is_started_again() -> None:
    async with _pool(2) as pool:
        first = await pool.broadcast({"do": "pid"})
        slow = asyncio.ensure_future(pool.submit({"do": "overlap", "sleep": 0.5}))  # child 0
        await asyncio.sleep(0.05)
        with pytest.raises(WorkerDied, match="exited with code -9"):
            await pool.submit({"do": "die"})  # child 1, the less busy one
        assert (await slow)["pid"] == first[0]  # the other child's item was untouched
        again = await pool.broadcast({"do": "pid"})
        assert again[0] == first[0] and again[1] not in first


async def test_a_target_that_cannot_be_imported_is_a_clear_error() -> None:
    pool = ProcessPool("tests.procpool_targets:no_such_function", 1, path=[ROOT], start_timeout_s=30)
    with pytest.raises(WorkerDied, match="did not start"):
        await pool.submit({"do": "pid"})
    await pool.aclose()
    with pytest.raises(ValueError, match="module:function"):
        ProcessPool("no_colon", 1)
    with pytest.raises(ValueError, match="at least 1"):
        ProcessPool(TARGET, 0)


async def test_closing_the_pool_cancels_what_the_children_run(tmp_path: Path) -> None:
    started, cancelled = tmp_path / "started", tmp_path / "cancelled"
    pool = _pool(1)
    item = asyncio.ensure_future(pool.submit({"do": "wait", "started": str(started), "cancelled": str(cancelled)}))
    for _ in range(600):
        if started.exists():
            break
        await asyncio.sleep(0.05)
    pid = int(started.read_text())
    await pool.aclose()
    assert cancelled.read_text() == "cancelled"  # the target saw the cancellation and could clean up
    assert not _alive(pid)
    with pytest.raises(WorkerDied):
        await item


PARENT = """
import asyncio, sys
from agentkit.procpool import ProcessPool
async def main():
    pool = ProcessPool({target!r}, 2, path=[{root!r}])
    print(*(await pool.broadcast({{"do": "pid"}})), flush=True)
    await pool.submit({{"do": "wait", "started": {started!r}, "cancelled": {cancelled!r}}})
asyncio.run(main())
"""


def test_children_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    started, cancelled = tmp_path / "started", tmp_path / "cancelled"
    code = PARENT.format(target=TARGET, root=ROOT, started=str(started), cancelled=str(cancelled))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "a child outlived its killed parent"
        assert cancelled.read_text() == "cancelled"
    finally:
        parent.kill()
