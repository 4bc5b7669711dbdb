"""Benchmark driver for agentkit (run with the project's own interpreter).

The same scripted episode as the peers' drivers: ``Agent`` + ``OpenAICompatible`` + the ``bash``
tool in a ``LocalSandbox`` (one persistent shell per run). Concurrent runs are asyncio tasks in
one event loop, agentkit's own way. ``--client per-run`` (the default) gives each run its own
model object, as ``agentkit batch`` does; ``--client shared`` shares one model (one connection
pool) between all runs; ``--client per-run-httpx`` is per-run with plain httpx (its own
transport, httpcore; a model given an httpx ``transport=`` uses httpx) instead of the aiohttp
client agentkit uses, to show what that costs. With
``--tool echo`` an in-process ``@tool`` answers instead,
so a concurrency run measures the framework alone; it is an ``async def`` tool, agentkit's way of
writing a tool that does not block (a plain ``def`` tool runs in a worker thread).
``--processes N`` spreads the runs over N child processes as ``agentkit batch --processes N``
does: each child is this driver again with ``--shard I/N`` and runs its share of the runs
(``agentkit.app.batch.in_shard``, the batch's rule) in an event loop of its own: one interpreter runs
Python on one core at a time. Each child warms up, says it is ready, and starts on the parent's
word; the clock runs from that word to the last child's result, as it runs from the first run's
start to the last run's end in one process; ``peak_mb`` and ``cpu_s`` add up all processes.
Prints one JSON line: ``{"framework", "wall_s", "cpu_s", "peak_mb", "statuses"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

import httpx
from agentkit.tools.base import tool
from agentkit.tools.shell import BashTool
from driver_common import driver_args, peak_rss_mb

from agentkit.agent import Agent, Limits
from agentkit.errors import AgentkitError
from agentkit.models.clients import POOL
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.app.batch import in_shard, parse_shard


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
    try:
        if tool_kind == "echo":
            agent = Agent(model, [echo], limits=limits)
            result = await agent.run(f"Run the commands. [[run:{run_id}]]")
        else:
            from agentkit.sandboxes import LocalSandbox

            async with LocalSandbox(workspace=workdir, isolate=isolate) as sb:
                agent = Agent(model, [BashTool()], sandbox=sb, limits=limits)
                result = await agent.run(f"Run the commands. [[run:{run_id}]]")
    except AgentkitError as e:  # a failed run raises
        return f"error: {e}"
    return result.status


def make_model(a: argparse.Namespace | dict) -> OpenAICompatible:
    a = argparse.Namespace(**a) if isinstance(a, dict) else a
    transport = httpx.AsyncHTTPTransport(limits=POOL) if a.client == "per-run-httpx" else None
    return OpenAICompatible("deepseek-chat", base_url=f"{a.base}/text/{a.tool}/{a.steps}/v1", api_key="bench",
                            max_retries=0, transport=transport)


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
            await one(f"{a.tag}-warmup{a.shard[0] if a.shard else ''}", workdir)
        if a.shard:  # a --processes child: ready, and waiting for the parent's word to start
            print("ready", flush=True)
            sys.stdin.readline()
        t0, c0 = time.perf_counter(), time.process_time()
        share = in_shard(range(a.concurrency), a.shard)  # all of them in one process
        statuses = await asyncio.gather(*(one(f"{a.tag}-{i}", workdir) for i in share))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await shared.aclose()
    return {"framework": "agentkit", "wall_s": wall, "cpu_s": cpu, "peak_mb": peak_rss_mb(),
            "statuses": list(statuses)}


def main_processes(a: argparse.Namespace) -> dict:
    """``--processes N``: N children ``agentkit_driver.py ARGS --shard I/N``, started together."""
    children = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--shard", f"{i}/{a.processes}"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for i in range(1, a.processes + 1)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready", "a shard did not start"
    t0 = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outs = [json.loads(child.stdout.readline()) for child in children if child.stdout is not None]
    wall = time.perf_counter() - t0
    for child in children:
        child.wait()
    return {"framework": "agentkit", "wall_s": wall, "cpu_s": sum(o["cpu_s"] for o in outs),
            "peak_mb": peak_rss_mb() + sum(o["peak_mb"] for o in outs),
            "statuses": [s for o in outs for s in o["statuses"]]}


def main() -> None:
    ap = driver_args("a")
    ap.add_argument("--isolate", action="store_true", help="run the shell under bwrap (peers run unisolated)")
    ap.add_argument("--client", default="per-run", choices=["per-run", "shared", "per-run-httpx"])
    ap.add_argument("--processes", default="1", help="child processes to spread the runs over, or 'auto' (one per core)")
    ap.add_argument("--shard", type=parse_shard, help="I/N: run the I-th of N shares of the runs (a --processes child)")
    a = ap.parse_args()
    a.processes = (os.cpu_count() or 1) if a.processes == "auto" else int(a.processes)
    logging.disable(logging.CRITICAL)
    if a.processes > 1 and a.client == "shared":
        ap.error("--client shared needs one process")
    print(json.dumps(main_processes(a) if a.processes > 1 and not a.shard else asyncio.run(amain(a))))


if __name__ == "__main__":
    main()
