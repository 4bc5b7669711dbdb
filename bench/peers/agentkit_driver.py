"""Benchmark driver for agentkit (run with the project's own interpreter).

The same scripted episode as the peers' drivers: ``Agent`` + ``OpenAICompatible`` + the ``bash``
tool in a ``LocalSandbox`` (one persistent shell per run). Concurrent runs are asyncio tasks in
one event loop, agentkit's own way. ``--client per-run`` (the default) gives each run its own
model object, as ``agentkit batch`` does; ``--client shared`` shares one model (one connection
pool) between all runs; ``--client per-run-httpx`` is per-run with httpx (what https endpoints
use) instead of the lean client plain-http endpoints get, to show what that costs. With
``--tool echo`` an in-process ``@tool`` answers instead,
so a concurrency run measures the framework alone; it is an ``async def`` tool, agentkit's way of
writing a tool that does not block (a plain ``def`` tool runs in a worker thread).
``--processes N`` spreads the runs over N child processes (``agentkit.procpool``, what
``agentkit batch --processes`` uses), each an event loop of its own: one interpreter runs Python
on one core at a time. Each child warms up first; the clock runs from the first run's start to
the last run's end, as it does in one process; ``peak_mb`` and ``cpu_s`` add up all processes.
Prints one JSON line: ``{"framework", "wall_s", "cpu_s", "peak_mb", "statuses"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from agentkit.tools.base import tool
from agentkit.tools.shell import BashTool
from driver_common import driver_args, peak_rss_mb

from agentkit.agent import Agent, Limits
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.procpool import ProcessPool


@tool(name="echo")
async def echo(text: str) -> str:
    """Return the text.

    Args:
        text: The text.
    """
    return text


async def run_one(model: OpenAICompatible, steps: int, run_id: str, tool_kind: str, isolate: bool,
                  workdir: str) -> str:
    limits = Limits(max_steps=steps + 5, max_repeats=10**6)
    if tool_kind == "echo":
        agent = Agent(model, [echo], limits=limits)
        result = await agent.run(f"Run the commands. [[run:{run_id}]]")
    else:
        from agentkit.sandboxes import LocalSandbox

        async with LocalSandbox(workdir, isolate=isolate) as sb:
            agent = Agent(model, [BashTool()], sandbox=sb, limits=limits)
            result = await agent.run(f"Run the commands. [[run:{run_id}]]")
    return result.status if result.status != "error" else f"error: {result.error}"


def make_model(a: argparse.Namespace | dict) -> OpenAICompatible:
    a = argparse.Namespace(**a) if isinstance(a, dict) else a
    return OpenAICompatible("deepseek-chat", base_url=f"{a.base}/text/{a.tool}/{a.steps}/v1", api_key="bench",
                            max_retries=0, http_client="httpx" if a.client == "per-run-httpx" else "auto")


async def amain(a: argparse.Namespace) -> dict:
    shared = make_model(a)

    async def one(run_id: str, workdir: str) -> str:
        model = shared if a.client == "shared" else make_model(a)
        try:
            return await run_one(model, a.steps, run_id, a.tool, a.isolate, workdir)
        finally:
            if model is not shared:
                await model.aclose()

    with tempfile.TemporaryDirectory(prefix="agentkit-bench-") as workdir:
        if a.warmup:
            await one(f"{a.tag}-warmup", workdir)
        t0, c0 = time.perf_counter(), time.process_time()
        statuses = await asyncio.gather(*(one(f"{a.tag}-{i}", workdir) for i in range(a.concurrency)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await shared.aclose()
    return {"framework": "agentkit", "wall_s": wall, "cpu_s": cpu, "peak_mb": peak_rss_mb(),
            "statuses": list(statuses)}


_child_workdir: str | None = None


async def child_item(arg: dict) -> object:
    """One item in a ``--processes`` child: a whole run (its status), or this process's counters."""
    global _child_workdir
    if arg.get("stats"):
        return {"cpu_s": time.process_time(), "peak_mb": peak_rss_mb()}
    if _child_workdir is None:  # first item in this child
        logging.disable(logging.CRITICAL)
        _child_workdir = tempfile.mkdtemp(prefix="agentkit-bench-")
    model = make_model(arg["conf"])
    try:
        return await run_one(model, arg["conf"]["steps"], arg["run_id"], arg["conf"]["tool"], arg["conf"]["isolate"],
                             _child_workdir)
    finally:
        await model.aclose()


async def amain_processes(a: argparse.Namespace) -> dict:
    conf = {k: getattr(a, k) for k in ("base", "tool", "steps", "client", "isolate")}
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    async with ProcessPool("agentkit_driver:child_item", a.processes, path=[str(Path(__file__).parent)],
                           env=env) as pool:
        if a.warmup:
            await asyncio.gather(*(pool.submit({"conf": conf, "run_id": f"{a.tag}-warmup{i}"})
                                   for i in range(a.processes)))
        before = await pool.broadcast({"stats": True})
        t0 = time.perf_counter()
        statuses = await asyncio.gather(*(pool.submit({"conf": conf, "run_id": f"{a.tag}-{i}"})
                                          for i in range(a.concurrency)))
        wall = time.perf_counter() - t0
        after = await pool.broadcast({"stats": True})
    return {"framework": "agentkit", "wall_s": wall, "cpu_s": sum(x["cpu_s"] for x in after) - sum(
        x["cpu_s"] for x in before), "peak_mb": peak_rss_mb() + sum(x["peak_mb"] for x in after),
        "statuses": list(statuses)}


def main() -> None:
    ap = driver_args("a")
    ap.add_argument("--isolate", action="store_true", help="run the shell under bwrap (peers run unisolated)")
    ap.add_argument("--client", default="per-run", choices=["per-run", "shared", "per-run-httpx"])
    ap.add_argument("--processes", default="1", help="child processes to spread the runs over, or 'auto' (one per core)")
    a = ap.parse_args()
    a.processes = (os.cpu_count() or 1) if a.processes == "auto" else int(a.processes)
    logging.disable(logging.CRITICAL)
    if a.processes > 1 and a.client == "shared":
        ap.error("--client shared needs one process")
    print(json.dumps(asyncio.run(amain_processes(a) if a.processes > 1 else amain(a))))


if __name__ == "__main__":
    main()
