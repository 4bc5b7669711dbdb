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


def test_memo_is_reused_until_the_message_changes() -> None:
    """A derived form is made once per message and dropped on every kind of change we notice:
    a field reassigned, a tool call's field reassigned, a tool call added; a copy starts fresh.
    Equal messages stay equal whatever their memos hold."""
    made: list[str] = []

    def form(msg: AssistantMessage) -> str:
        made.append(msg.text)
        return f"{msg.text}|{[c.arguments for c in msg.tool_calls]}"

    m = AssistantMessage(content="a", tool_calls=[ToolCall(id="c1", name="bash", arguments="{}")])
    assert m.memo("k", lambda: form(m)) == m.memo("k", lambda: form(m)) == "a|['{}']"
    assert made == ["a"]
    m.content = "b"
    assert m.memo("k", lambda: form(m)) == "b|['{}']"
    m.tool_calls[0].arguments = '{"x": 1}'
    assert m.memo("k", lambda: form(m)) == """b|['{"x": 1}']"""
    m.tool_calls.append(ToolCall(id="c2", name="bash", arguments="[]"))
    assert m.memo("k", lambda: form(m)).endswith("'[]']")
    copy = m.model_copy(update={"content": "c"})
    assert copy.memo("k", lambda: form(copy)).startswith("c|")
    assert m.memo("k", lambda: form(m)).startswith("b|")  # the original keeps its own
    assert len(made) == 5
    assert m == m.model_copy() and m.model_copy() == m  # memos never enter equality


def test_a_memo_goes_away_with_its_message() -> None:
    import gc

    from agentkit.messages import _MEMOS

    m = UserMessage(content="short-lived")
    m.memo("k", lambda: "form")
    key = id(m)
    assert key in _MEMOS
    del m
    gc.collect()
    assert key not in _MEMOS  # the weak reference's callback removed the entry
