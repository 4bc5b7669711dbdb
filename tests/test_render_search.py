"""The search-agent format: earlier turns exactly as the official template (thinking on), the current
turn keeping its reasoning across tool calls, and the switches of ``SearchAgentFormat``."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from agentkit.deepseek.render import (
    SearchAgentFormat,
    render_prompt,
    render_search_prompt,
    render_tools_block,
)
from agentkit.deepseek.parse import parse_completion
from tests.fixtures_formats import SEARCH_TOOL, render_official
from tests.test_render_oracle import agent_loop

FMT = SearchAgentFormat(neutralize=False)  # the oracle inserts text verbatim


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_loop())
def test_history_is_the_official_template(msgs: list[dict[str, Any]]) -> None:
    last_user = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    history, current = msgs[: last_user + 1], msgs[last_user + 1:]
    systems = [m for m in current if m["role"] == "system"]
    out = FMT.render(msgs, add_generation_prompt=False)
    assert out.startswith(render_official(history + systems, thinking=True, add_generation_prompt=False))
    if not current:  # a fresh turn is exactly the template in thinking mode
        assert FMT.render(msgs) == render_official(msgs, thinking=True, add_generation_prompt=True)
        assert FMT.render(msgs).endswith("<｜Assistant｜><think>")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_loop())
def test_prompt_only_grows_within_a_turn(msgs: list[dict[str, Any]]) -> None:
    """Each step's prompt is a prefix of the next one's (so the server's prefix cache works and the
    model sees its own earlier reasoning of this turn)."""
    last_user = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    prompts = [FMT.render(msgs[:i]) for i in range(last_user + 1, len(msgs) + 1)
               if msgs[i - 1]["role"] in ("user", "tool")]
    for a, b in zip(prompts, prompts[1:]):
        assert b.startswith(a)


def test_current_turn_layout() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"questions": "a||b"}'}}
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"},
            {"role": "assistant", "content": "", "reasoning_content": "think 1", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "[webpage 1 begin]R[webpage 1 end]"}]
    out = render_search_prompt(msgs, [SEARCH_TOOL])
    assert out == ("<｜begin▁of▁sentence｜>S\n\n" + render_tools_block([SEARCH_TOOL]) + "<｜User｜>Q?<｜Assistant｜>"
                   "<think>think 1</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>"
                   '{"questions": "a||b"}<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>'
                   "<｜tool▁output▁begin｜>[webpage 1 begin]R[webpage 1 end]<｜tool▁output▁end｜>")
    assert FMT.starts_in_reasoning(msgs)
    # the model's continuation after the tool output is reasoning, then the answer
    r = parse_completion("Found it.</think>The answer [citation:1].", thinking=FMT.starts_in_reasoning(msgs))
    assert (r.reasoning, r.content) == ("Found it.", "The answer [citation:1].")
    reopened = SearchAgentFormat(reopen_think_after_tool=True).render(msgs, [SEARCH_TOOL])
    assert reopened == out + "<think>"
    dropped = SearchAgentFormat(keep_current_reasoning=False).render(msgs, [SEARCH_TOOL])
    assert "think 1" not in dropped and "<｜Assistant｜><think></think><｜tool▁calls▁begin｜>" in dropped
    assert SearchAgentFormat(thinking=False).render(msgs, [SEARCH_TOOL]) == render_prompt(msgs, [SEARCH_TOOL])
    assert not SearchAgentFormat(thinking=False).starts_in_reasoning(msgs)
