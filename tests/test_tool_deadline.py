"""Every tool call has a deadline, and a tool that raises keeps its traceback in the trajectory
(never in what the model reads). Real tools, a real shell sandbox, real agent runs with Replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agentkit.agent import Agent, Limits
from agentkit.models.replay import Replay
from agentkit.tools import base
from agentkit.tools.base import DEFAULT_TOOL_TIMEOUT, ToolContext, call_tool, tool, tool_timeout
from agentkit.tools.python import PythonTool
from agentkit.tools.shell import BashTool
from tests.fixtures_agent import turn


@tool(timeout=0.3)
async def stall(seconds: float) -> str:
    """Sleep for a while.

    Args:
        seconds: how long
    """
    await asyncio.sleep(seconds)
    return "woke up"


@tool
async def raises_timeout() -> str:
    """Fails with its own TimeoutError (not the deadline)."""
    raise TimeoutError("upstream took too long")


def test_timeouts_default_per_tool_and_shell_margin() -> None:
    assert tool_timeout(raises_timeout, {}) == DEFAULT_TOOL_TIMEOUT == 300.0
    assert tool_timeout(stall, {}) == 0.3
    assert tool_timeout(tool(timeout=None)(lambda: None), {}) is None  # explicitly unlimited
    bash = BashTool(default_timeout=120, max_timeout=900)
    assert tool_timeout(bash, {"command": "x"}) == DEFAULT_TOOL_TIMEOUT  # 120 + margin fits in the default
    assert tool_timeout(bash, {"command": "x", "timeout": 800}) == 800 + base.TIMEOUT_MARGIN
    assert tool_timeout(bash, {"command": "x", "timeout": 5000}) == 900 + base.TIMEOUT_MARGIN  # capped like the tool
    assert tool_timeout(BashTool(default_timeout=600), {"command": "x"}) == 600 + base.TIMEOUT_MARGIN
    assert tool_timeout(PythonTool(timeout=500), {"code": "1"}) == 500 + base.TIMEOUT_MARGIN


async def test_a_hanging_tool_becomes_an_error_observation() -> None:
    obs = await asyncio.wait_for(call_tool(stall, {"seconds": 30}, ToolContext()), 10)
    assert obs.is_error and obs.text == "Error: the tool stall did not finish within 0.3 s and was stopped."
    assert obs.data == {"timeout_s": 0.3}
    assert (await call_tool(stall, {"seconds": 0}, ToolContext())).text == "woke up"


async def test_a_tools_own_timeout_error_is_not_taken_for_the_deadline() -> None:
    obs = await call_tool(raises_timeout, {}, ToolContext())
    assert obs.is_error and obs.text == "Error: tool raises_timeout failed: TimeoutError: upstream took too long"
    assert "raise TimeoutError" in obs.data["traceback"]


async def test_shell_command_is_not_cut_by_the_generic_default(local_sandbox: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With a 0.5 s default, a bash command allowed 3 s still finishes, and its own timeout still wins."""
    monkeypatch.setattr(base, "DEFAULT_TOOL_TIMEOUT", 0.5)
    monkeypatch.setattr(base, "TIMEOUT_MARGIN", 5.0)
    ctx = ToolContext(sandbox=local_sandbox)
    bash = BashTool(default_timeout=3)
    done = await call_tool(bash, {"command": "sleep 1.2; echo finished"}, ctx)
    assert not done.is_error and "finished" in done.text
    killed = await call_tool(bash, {"command": "echo started; sleep 30", "timeout": 1}, ctx)
    assert killed.data["timed_out"] and "started" in killed.text  # the sandbox's timeout, output kept
    assert (await call_tool(stall, {"seconds": 30}, ToolContext())).is_error  # other tools: the default


async def test_agent_run_hung_tool_and_raising_tool(agent_tools: list[Any], tmp_path: Path) -> None:
    """The run goes on after both; the model reads short errors, the trajectory keeps the traceback."""
    path = tmp_path / "t.jsonl"
    script = [turn(None, ("stall", {"seconds": 60})), turn(None, ("boom", {"reason": "disk <on> fire"})),
              turn("gave up")]
    agent = Agent(Replay(script), [*agent_tools, stall], limits=Limits(max_steps=5), trajectory=path)
    result = await asyncio.wait_for(agent.run("try"), 20)
    assert result.status == "done" and result.answer == "gave up"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    hung, boom = [r for r in rows if r["type"] == "tool_result"]
    assert hung["observation"]["is_error"] and "did not finish within 0.3 s" in hung["message"]["content"]
    assert boom["message"]["content"] == "Error: tool boom failed: RuntimeError: disk <on> fire"
    tb = boom["observation"]["data"]["traceback"]
    assert tb.startswith("Traceback (most recent call last):") and 'raise RuntimeError(reason)' in tb
    assert tb.rstrip().endswith("RuntimeError: disk <on> fire")
    assert "Traceback" not in json.dumps([r["message"] for r in rows if r["type"] in ("message", "tool_result")])
