"""Replay model: plays scripted turns (script or trajectory), streams, runs out clearly, skips on resume."""

from __future__ import annotations

import json

import pytest

from agentkit.errors import ConfigError, ModelError
from agentkit.messages import AssistantMessage, ToolCall, ToolMessage, Usage, UserMessage
from agentkit.models.base import Model
from agentkit.models.replay import Replay
from agentkit.trajectory import TrajectoryWriter

SCRIPT = [
    {"content": None, "reasoning": "need a file",
     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{\"p\": \"a\"}"}}]},
    {"tool_calls": [{"name": "read", "arguments": {"p": "b"}}]},  # short form, object arguments
    {"content": "the answer is 42", "warnings": ["leaked token repaired"]},
]


def _script_file(tmp_path):
    path = tmp_path / "script.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in SCRIPT))
    return path


async def test_plays_turns_in_order_then_runs_out(tmp_path) -> None:
    m = Replay(_script_file(tmp_path))
    assert isinstance(m, Model) and m.provider == "replay"
    msgs = [UserMessage(content="q")]
    c1 = await m.complete(msgs)
    assert c1.message.reasoning == "need a file" and c1.finish_reason == "tool_calls"
    assert c1.message.tool_calls == [ToolCall(id="c1", name="read", arguments='{"p": "a"}')]
    assert c1.usage.prompt > 0 and c1.usage.completion > 0 and c1.usage.cost_usd == 0.0
    c2 = await m.complete(msgs)
    assert c2.message.tool_calls[0].arguments == '{"p": "b"}' and c2.message.tool_calls[0].id
    c3 = await m.complete(msgs)
    assert c3.message.content == "the answer is 42" and c3.finish_reason == "stop"
    assert c3.warnings == ["leaked token repaired"]
    with pytest.raises(ModelError, match="ran out after 3 turns"):
        await m.complete(msgs)


async def test_stream_yields_deltas_then_completion(tmp_path) -> None:
    m = Replay(SCRIPT, chunk_chars=3)
    deltas = [d async for d in m.stream([UserMessage(content="q")])]
    final = deltas[-1].completion
    assert final is not None and all(d.completion is None for d in deltas[:-1])
    assert "".join(d.reasoning or "" for d in deltas) == "need a file"
    args = "".join(tc.arguments for d in deltas for tc in d.tool_calls)
    assert args == final.message.tool_calls[0].arguments
    assert [tc.name for d in deltas for tc in d.tool_calls if tc.name] == ["read"]


async def test_trajectory_as_script_and_skip(tmp_path) -> None:
    path = tmp_path / "traj.jsonl"
    w = TrajectoryWriter(path)
    w.run(id="r")
    w.message(0, UserMessage(content="q"))
    w.message(1, AssistantMessage(tool_calls=[ToolCall(id="x", name="t", arguments="{}")]), usage=Usage())
    w.tool_result(1, ToolMessage(tool_call_id="x", name="t", content="o"), {"text": "o"}, 0.0)
    w.message(2, AssistantMessage(content="final"), usage=Usage())
    w.close()
    m = Replay(path)
    assert len(m.turns) == 2
    m.skip(1)
    assert m.remaining == 1
    assert (await m.complete([])).message.content == "final"


def test_missing_script_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Replay(tmp_path / "nope.jsonl")
