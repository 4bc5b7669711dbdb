"""Property test: whatever a model sends, the loop ends with a status and a consistent trajectory."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.agent import Agent, Limits
from agentkit.messages import AssistantMessage, ToolMessage
from agentkit.models.replay import Replay
from agentkit.trajectory import Trajectory
from tests.fixtures_agent import Probe, make_tools

NAMES = ["echo", "boom", "long_output", "cite", "write", "submit", "nope", ""]
ARGS = st.one_of(
    st.just('{"text": "hi"}'), st.just('{"n": 50}'), st.just('{"key": "k", "value": "v"}'),
    st.just('{"url": "https://x.example/", "title": "X"}'), st.just('{"summary": "done"}'),
    st.just("{"), st.just("[1, 2]"), st.just(""), st.just('{"n": "many"}'),
    st.text(max_size=20),
    st.dictionaries(st.sampled_from(["text", "n", "reason", "zz"]),
                    st.one_of(st.integers(-5, 5), st.text(max_size=8), st.none()), max_size=3).map(json.dumps),
)
CALL = st.builds(lambda n, a: {"name": n, "arguments": a}, st.sampled_from(NAMES), ARGS)
TURN = st.builds(
    lambda content, calls, warn, cut: {"content": content, "tool_calls": calls,
                                       **({"warnings": ["unparsed markup"]} if warn else {}),
                                       **({"finish_reason": "length"} if cut else {})},
    st.one_of(st.none(), st.just(""), st.text(max_size=30)), st.lists(CALL, max_size=3), st.booleans(),
    st.sampled_from([False, False, False, True]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns=st.lists(TURN, min_size=1, max_size=8), require_submit=st.booleans())
def test_any_model_output_ends_cleanly(turns, require_submit) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        agent = Agent(Replay(turns), make_tools(Probe())[:6], trajectory=path, require_submit=require_submit,
                      limits=Limits(max_steps=6, max_format_errors=3, max_repeats=2))
        run = agent.iter("fuzz")  # iter() does not raise for a failed run: the result says so

        async def drain() -> None:
            async for _ in run:
                pass

        asyncio.run(drain())
        result = run.result
        assert result is not None
        assert result.status in ("done", "limit", "error")
        t = Trajectory.load(path)
        assert t.status == result.status and t.steps == result.steps <= 6 and t.answer == result.answer
        assert len(t.model_calls()) == result.steps
        # every tool call has exactly one result, right after its turn, in call order
        msgs = t.messages
        for i, m in enumerate(msgs):
            if isinstance(m, AssistantMessage) and m.tool_calls:
                following = msgs[i + 1:i + 1 + len(m.tool_calls)]
                assert [r.tool_call_id for r in following if isinstance(r, ToolMessage)] == \
                    [c.id for c in m.tool_calls]
        if result.status == "error":
            assert result.error
