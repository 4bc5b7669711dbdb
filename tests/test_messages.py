"""Messages round-trip the OpenAI chat format losslessly, DeepSeek additions included."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from agentkit.messages import (AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, Usage, UserMessage,
                               content_text, message_from_openai, messages_from_openai, messages_to_openai,
                               reasoning_from_details)

WIRE = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "hi", "name": "alice"},
    {"role": "user", "content": [{"type": "text", "text": "part one "}, {"type": "text", "text": "part two"}]},
    {"role": "assistant", "content": None, "reasoning_content": "thinking...",
     "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\": \"ls\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "a.py"},
    {"role": "tool", "tool_call_id": "call_2", "content": "", "name": "read"},
    {"role": "assistant", "content": "answer", "reasoning": "from vLLM"},
    {"role": "assistant", "content": "x", "reasoning_details": [{"type": "reasoning.text", "text": "r1", "index": 0}]},
    {"role": "assistant", "content": "prefix text", "prefix": True},
    {"role": "assistant", "content": "", "tool_calls": []},
    {"role": "assistant", "content": "kept", "refusal": None, "custom_vendor_key": {"a": [1, 2]}},
    {"role": "user", "content": "x", "cache_control": {"type": "ephemeral"}},
]


@pytest.mark.parametrize("wire", WIRE, ids=range(len(WIRE)))
def test_round_trip_is_lossless(wire):
    msg = message_from_openai(wire)
    assert msg.to_openai() == wire
    # and through JSON (what the trajectory stores)
    again = TypeAdapter(Message).validate_json(msg.model_dump_json())
    assert again.to_openai() == wire


def test_typed_fields():
    msgs = messages_from_openai(WIRE)
    assert isinstance(msgs[0], SystemMessage) and isinstance(msgs[1], UserMessage) and msgs[1].name == "alice"
    assert msgs[2].text == "part one part two"
    a = msgs[3]
    assert isinstance(a, AssistantMessage) and a.reasoning == "thinking..." and a.reasoning_key == "reasoning_content"
    assert [c.name for c in a.tool_calls] == ["bash", "read"]
    assert a.tool_calls[0].arguments == '{"cmd": "ls"}'  # a string, verbatim
    assert a.tool_calls[0].parsed_arguments() == {"cmd": "ls"}
    assert isinstance(msgs[4], ToolMessage) and msgs[4].tool_call_id == "call_1"
    assert msgs[6].reasoning == "from vLLM" and msgs[6].reasoning_key == "reasoning"
    assert msgs[7].reasoning == "r1" and msgs[7].reasoning_details is not None
    assert msgs[8].prefix is True
    assert messages_to_openai(msgs) == WIRE


def test_object_arguments_become_json_text_and_ids_are_made():
    call = ToolCall.from_openai({"function": {"name": "f", "arguments": {"a": 1}}})
    assert call.arguments == '{"a": 1}' and call.id.startswith("call_")
    assert ToolCall.from_openai({"function": {"name": "f", "arguments": None}}).arguments == ""
    with pytest.raises(json.JSONDecodeError):
        ToolCall(name="f", arguments="{bad").parsed_arguments()
    assert ToolCall(name="f", arguments="  ").parsed_arguments() == {}


def test_unknown_role_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown message role"):
        message_from_openai({"role": "wizard", "content": "x"})


def test_usage_sums_and_unknown_cost():
    a = Usage(prompt=10, completion=5, reasoning=2, cached=4, cost_usd=0.5)
    b = Usage(prompt=1, completion=1, cost_usd=0.25)
    s = a + b
    assert (s.prompt, s.completion, s.reasoning, s.cached, s.cost_usd, s.total) == (11, 6, 2, 4, 0.75, 17)
    assert (a + Usage(cost_usd=None)).cost_usd is None


def test_helpers():
    assert content_text(None) == "" and content_text([{"type": "image_url"}, {"text": "t"}]) == "t"
    assert reasoning_from_details([{"summary": "s"}, {"text": "t"}, "junk"]) == "st"  # type: ignore[list-item]
    assert reasoning_from_details([]) is None


_text = st.text(max_size=30)
_call = st.builds(lambda i, n, a: {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}},
                  st.integers(0, 999), st.text(min_size=1, max_size=10), _text)
_wire = st.one_of(
    st.builds(lambda c: {"role": "user", "content": c}, _text),
    st.builds(lambda c: {"role": "system", "content": c}, _text),
    st.builds(lambda c, r, calls: {"role": "assistant", "content": c,
                                   **({"reasoning_content": r} if r is not None else {}),
                                   **({"tool_calls": calls} if calls else {})},
              st.one_of(st.none(), _text), st.one_of(st.none(), _text), st.lists(_call, max_size=3)),
    st.builds(lambda i, c: {"role": "tool", "tool_call_id": i, "content": c}, _text, _text),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_wire, max_size=6))
def test_round_trip_property(wire):
    assert messages_to_openai(messages_from_openai(wire)) == wire


def test_a_seen_conversation_knows_whether_it_only_grew() -> None:
    """Grown: the very same message objects first, none edited since. A field reassigned (of a
    message or of one of its tool calls) is an edit; a copy is another message. Nothing of it
    enters equality, and nothing is process-global."""
    import agentkit.messages as messages_module
    from agentkit.messages import SeenConversation

    def convo() -> list:
        return [UserMessage(content="a"), AssistantMessage(content="b", tool_calls=[ToolCall(name="bash")])]

    c = convo()
    seen = SeenConversation(c)
    longer = c + [UserMessage(content="c")]
    assert seen.grown_into(c) and seen.grown_into(longer)
    assert seen.extend(longer).grown_into(longer) and seen.messages == longer
    assert not seen.grown_into(c) and not seen.grown_into([UserMessage(content="z")] + longer)
    assert not SeenConversation(c).grown_into([c[0].model_copy(), c[1]])
    for edit in (lambda m: setattr(m[0], "content", "x"), lambda m: setattr(m[1].tool_calls[0], "arguments", "[]"),
                 lambda m: setattr(m[1], "tool_calls", [])):
        c = convo()
        seen = SeenConversation(c)
        edit(c)
        assert not seen.grown_into(c)
    assert not SeenConversation([{"role": "user", "content": "a"}]).grown_into([{"role": "user", "content": "a"}])
    m = convo()[1]
    m.content = "edited"
    assert m == m.model_copy() and m.model_copy() == m
    assert not hasattr(messages_module, "_MEMOS") and not hasattr(messages_module, "EDITS")
