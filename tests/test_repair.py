"""Leaked-markup repair: unit cases, and end to end through the chat-completions client against the
local fake server returning DeepSeek markup inside ``content``."""

from __future__ import annotations

import json

import pytest

from agentkit.deepseek.repair import repair_message, strip_markers
from agentkit.messages import AssistantMessage, ToolCall

B, E = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CB, CE, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
LEAK = f'I will list the files.{B}{CB}bash{SEP}{{"command": "ls"}}{CE}{CB}bash{SEP}{{"command": "pwd"}}{CE}{E}'


def test_clean_message_is_returned_unchanged() -> None:
    msg = AssistantMessage(content="Plain answer, 3 < 4.")
    fixed, warnings = repair_message(msg)
    assert fixed is msg and warnings == []


def test_leaked_calls_move_into_tool_calls() -> None:
    fixed, warnings = repair_message(AssistantMessage(content=LEAK))
    assert fixed.content == "I will list the files."
    assert [(c.name, json.loads(c.arguments)) for c in fixed.tool_calls] == [("bash", {"command": "ls"}),
                                                                              ("bash", {"command": "pwd"})]
    assert len({c.id for c in fixed.tool_calls}) == 2
    assert any("moved 2 tool call" in w for w in warnings)


def test_only_markup_leaves_no_content() -> None:
    fixed, _ = repair_message(AssistantMessage(content=f'{B}{CB}f{SEP}{{}}{CE}{E}<｜end▁of▁sentence｜>'))
    assert fixed.content is None and fixed.tool_calls[0].name == "f"


def test_structured_calls_are_kept_and_not_duplicated() -> None:
    existing = ToolCall(id="call_1", name="bash", arguments='{"command": "ls"}')
    fixed, _ = repair_message(AssistantMessage(content=LEAK, tool_calls=[existing]))
    assert [c.id for c in fixed.tool_calls][0] == "call_1"
    assert [json.loads(c.arguments)["command"] for c in fixed.tool_calls] == ["ls", "pwd"]


def test_bad_leaked_call_is_reported_and_good_one_kept() -> None:
    text = f'{B}{CB}ok{SEP}{{"a": 1}}{CE}{CB}bad{SEP}{{"a": }}{CE}{E}'
    fixed, warnings = repair_message(AssistantMessage(content=text))
    assert [c.name for c in fixed.tool_calls] == ["ok"]
    assert any("could not be used" in w and "tool call 2" in w for w in warnings)


def test_stray_markers_are_stripped_from_visible_text() -> None:
    fixed, warnings = repair_message(AssistantMessage(content="Answer<｜end▁of▁sentence｜><｜User｜> is <｜search▁begin｜>42"))
    assert fixed.content == "Answer is 42" and not fixed.tool_calls
    assert any("stray special tokens" in w for w in warnings)
    assert strip_markers("a <|EOT|> b <｜DSML｜invoke name=\"x\"> c") == ("a  b  c", ["<|EOT|>", '<｜DSML｜invoke name="x">'])


def test_code_with_ascii_pipes_is_not_touched() -> None:
    msg = AssistantMessage(content="In F#: `x <| f |> g` and `a <|> b`.")
    fixed, warnings = repair_message(msg)
    assert fixed is msg and warnings == []


def test_closing_dsml_tags_are_stripped_too() -> None:
    assert strip_markers("a</｜DSML｜invoke>b<|tool▁sep|>c")[0] == "abc"


def test_leaked_reasoning_moves_to_reasoning() -> None:
    fixed, warnings = repair_message(AssistantMessage(content=f'Need ls.</think>{B}{CB}bash{SEP}{{"command": "ls"}}{CE}{E}'))
    assert fixed.reasoning == "Need ls." and fixed.content is None and fixed.tool_calls[0].name == "bash"
    assert any("reasoning" in w for w in warnings)


def test_dsml_leak() -> None:
    text = ('<｜DSML｜function_calls>\n<｜DSML｜invoke name="fetch">\n<｜DSML｜parameter name="url" string="true">'
            'https://example.org</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>')
    fixed, _ = repair_message(AssistantMessage(content=text))
    assert [(c.name, json.loads(c.arguments)) for c in fixed.tool_calls] == [("fetch", {"url": "https://example.org"})]


def test_truncated_leak_keeps_text_without_markers() -> None:
    fixed, warnings = repair_message(AssistantMessage(content=f"Let me look.{B}{CB}get_weather"))
    assert not fixed.tool_calls and fixed.content == "Let me look.get_weather"
    assert any("could not be used" in w for w in warnings)


# --------------------------------------------------------------------------- through the real client


@pytest.mark.parametrize("stream", [False, True])
async def test_client_repairs_leak_from_fake_server(fake_server, stream: bool) -> None:
    pytest.importorskip("agentkit.models.openai_compat")
    from agentkit.messages import UserMessage
    from agentkit.models.openai_compat import OpenAICompatible
    from agentkit.testing.server import Reply

    srv = await fake_server([Reply(content=LEAK, chunk_chars=5)])
    model = OpenAICompatible("deepseek/deepseek-chat-v3.1", base_url=srv.base_url, api_key="test-key",
                             provider="openai-compatible")
    try:
        if stream:
            final = None
            async for delta in model.stream([UserMessage(content="list files")]):
                final = delta.completion or final
            assert final is not None
            comp = final
        else:
            comp = await model.complete([UserMessage(content="list files")])
    finally:
        await model.aclose()
    assert comp.message.content == "I will list the files."
    assert [json.loads(c.arguments)["command"] for c in comp.message.tool_calls] == ["ls", "pwd"]
    assert any("moved 2 tool call" in w for w in comp.warnings)


# --------------------------------------------------------------------------- </think> in the answer (issue 13 §4)


def test_think_close_inside_a_non_thinking_answer_stays_in_the_answer() -> None:
    """A literal ``</think>`` in the middle of an answer (e.g. explaining the tag) is answer text:
    the leak repair must not move what precedes it into reasoning, with thinking off or unknown."""
    text = f'Models end reasoning with </think> and then answer.{B}{CB}bash{SEP}{{"command": "ls"}}{CE}{E}'
    for thinking in (False, None):
        fixed, _ = repair_message(AssistantMessage(content=text), thinking=thinking)
        assert fixed.reasoning is None
        assert fixed.content == "Models end reasoning with </think> and then answer."
        assert [c.name for c in fixed.tool_calls] == ["bash"]


def test_think_close_with_thinking_on_is_leaked_reasoning() -> None:
    text = f"Need to look.</think>Here is the plan.{B}{CB}bash{SEP}{{}}{CE}{E}"
    fixed, _ = repair_message(AssistantMessage(content=text), thinking=True)
    assert fixed.reasoning == "Need to look." and fixed.content == "Here is the plan."
    # Unknown mode and answer text after </think>: nothing is moved (it stays visible, not lost).
    fixed, _ = repair_message(AssistantMessage(content=text))
    assert fixed.reasoning is None and fixed.content == "Need to look.</think>Here is the plan."


def test_thinking_on_without_think_close_keeps_the_answer() -> None:
    """The provider split the reasoning off already: the content is the answer, even in thinking mode."""
    text = f"I will list the files.{B}{CB}bash{SEP}{{}}{CE}{E}"
    fixed, _ = repair_message(AssistantMessage(content=text, reasoning="r"), thinking=True)
    assert fixed.content == "I will list the files." and fixed.reasoning == "r"
