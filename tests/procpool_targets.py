"""Targets the process-pool tests run in child processes (importable as ``tests.procpool_targets``)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

_in_flight = 0
_most = 0


async def work(arg: dict[str, Any]) -> Any:
    """Does what ``arg["do"]`` says, so one target covers every case."""
    global _in_flight, _most
    do = arg.get("do", "pid")
    if do == "pid":
        return os.getpid()
    if do == "echo":
        return arg["value"]
    if do == "overlap":  # how many items this child held at once
        _in_flight += 1
        _most = max(_most, _in_flight)
        try:
            await asyncio.sleep(arg["sleep"])
        finally:
            _in_flight -= 1
        return {"pid": os.getpid(), "most": _most}
    if do == "print":
        print("noise on stdout that must not reach the protocol", flush=True)
        os.write(1, b"{\"id\": -1, \"ok\": \"forged\"}\n")
        return "clean"
    if do == "raise":
        raise ValueError(f"bad value {arg['value']}")
    if do == "not-json":
        return {1, 2}
    if do == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if do == "wait":  # until cancelled; leaves a mark when it is
        try:
            Path(arg["started"]).write_text(str(os.getpid()))
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            Path(arg["cancelled"]).write_text("cancelled")
            raise
    raise AssertionError(f"unknown {do!r}")
