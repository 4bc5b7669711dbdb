"""Fixtures for the agent loop: real tools built with ``@tool`` and scripted turns.

``turn(...)`` builds one assistant turn of a replay script; ``script_file`` writes turns to a
JSONL file; ``agent_tools`` is a set of small real tools (echo, a concurrency probe, a tool
that raises, a long-output tool, a source-adding tool).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from agentkit.tools.base import ToolContext, tool


def turn(content: str | None = None, *calls: tuple[str, Any], reasoning: str | None = None,
         usage: dict[str, Any] | None = None, warnings: list[str] | None = None) -> dict[str, Any]:
    """One assistant turn; each call is ``(name, arguments)`` with arguments a dict or raw JSON text."""
    out: dict[str, Any] = {"content": content}
    if reasoning:
        out["reasoning"] = reasoning
    if calls:
        out["tool_calls"] = [{"name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}
                             for n, a in calls]
    if usage is not None:
        out["usage"] = usage
    if warnings:
        out["warnings"] = warnings
    return out


class Probe:
    """Tracks how many calls of a tool run at the same time."""

    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.calls: list[str] = []
        self.both_in = asyncio.Event()


def make_tools(probe: Probe) -> list[Any]:
    @tool
    async def echo(text: str) -> str:
        """Return the text upper-cased.

        Args:
            text: the text to echo
        """
        probe.calls.append(text)
        return text.upper()

    @tool
    async def meet(name: str) -> str:
        """Wait until another call of this tool runs concurrently (proves parallel execution).

        Args:
            name: a label for this call
        """
        probe.active += 1
        probe.max_active = max(probe.max_active, probe.active)
        if probe.active >= 2:
            probe.both_in.set()
        try:
            await asyncio.wait_for(probe.both_in.wait(), 10)
            return f"{name}: met"
        except asyncio.TimeoutError:
            return f"{name}: alone"
        finally:
            probe.active -= 1

    @tool(parallel_safe=False)
    async def write(key: str, value: str, ctx: ToolContext) -> str:
        """Store a value (not parallel-safe: calls run one at a time).

        Args:
            key: where
            value: what
        """
        probe.active += 1
        probe.max_active = max(probe.max_active, probe.active)
        await asyncio.sleep(0.01)
        ctx.data[key] = value
        probe.active -= 1
        return f"stored {key}"

    @tool
    def boom(reason: str = "kaboom") -> str:
        """Always fails.

        Args:
            reason: the failure text
        """
        raise RuntimeError(reason)

    @tool
    def long_output(n: int) -> str:
        """Return n characters of numbered lines.

        Args:
            n: how many characters
        """
        line = "".join(f"line {i:05d}\n" for i in range(n // 11 + 1))
        return line[:n]

    @tool
    def cite(url: str, title: str, ctx: ToolContext) -> str:
        """Record a source and return its citation number.

        Args:
            url: the page
            title: its title
        """
        return f"[citation:{ctx.sources.add(url, title)}]"

    @tool
    async def sleep(seconds: float) -> str:
        """Sleep, then say so.

        Args:
            seconds: how long
        """
        probe.calls.append(f"sleep {seconds}")
        await asyncio.sleep(seconds)
        return "slept"

    return [echo, meet, write, boom, long_output, cite, sleep]


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def agent_tools(probe: Probe) -> list[Any]:
    return make_tools(probe)


@pytest.fixture
def script_file(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Path]:
    def write(turns: list[dict[str, Any]], name: str = "script.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(t) + "\n" for t in turns))
        return path

    return write
