"""Our renderer against the official chat templates (jinja2, set up like transformers): byte-identical
for random conversations the templates can express."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.deepseek.render import render_prompt, render_tools_block
from agentkit.messages import message_from_openai
from tests.fixtures_formats import render_official

SETTINGS = settings(max_examples=1200, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text: arbitrary unicode, plus the strings that change what the templates do.
TRICKY = ["", "</think>", "<think>", "a</think>b</think>c", "<｜User｜>", "\n\n", " ", "{\"a\": \"b\\\"c\"}",
          "<｜tool▁calls▁begin｜>", "é中文🙂", "{{ x }}", "{% if %}", "\\n", "None"]
text = st.one_of(st.text(max_size=24), st.sampled_from(TRICKY),
                 st.builds(lambda a, b: a + b, st.sampled_from(TRICKY), st.text(max_size=8)))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8)
arguments = st.one_of(
    st.builds(lambda v, a: json.dumps(v, ensure_ascii=a), st.dictionaries(text, json_values, max_size=4),
              st.booleans()),
    st.builds(lambda v: json.dumps(v, indent=2), st.dictionaries(text, json_values, max_size=3)),
    text)  # whatever the model produced, even invalid JSON, is inlined verbatim
tool_call = st.builds(lambda n, a, i: {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}},
                      text, arguments, st.integers(0, 999))


def _assistant_text(content: str, reasoning: str | None, prefix: bool | None) -> dict[str, Any]:
    m: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        m["reasoning_content"] = reasoning  # dropped by every template
    if prefix is not None:
        m["prefix"] = prefix
    return m


system = st.builds(lambda c: {"role": "system", "content": c}, text)
user = st.builds(lambda c: {"role": "user", "content": c}, text)
assistant_text = st.builds(_assistant_text, text, st.none() | text, st.none() | st.booleans())
assistant_calls = st.builds(
    lambda c, calls: {"role": "assistant", "content": c, "tool_calls": calls},
    st.none() | text, st.lists(tool_call, min_size=1, max_size=3))
tool = st.builds(lambda c, i: {"role": "tool", "tool_call_id": f"call_{i}", "content": c}, text, st.integers(0, 9))

any_message = st.one_of(system, user, assistant_text, assistant_calls, tool)


@st.composite
def agent_loop(draw: Any) -> list[dict[str, Any]]:
    """The shape agents produce: system, user, (calls, outputs)*, answer, maybe another user."""
    msgs = draw(st.lists(system, max_size=2))
    for _ in range(draw(st.integers(1, 2))):
        msgs.append(draw(user))
        for _ in range(draw(st.integers(0, 3))):
            call = draw(assistant_calls)
            msgs.append(call)
            msgs.extend(draw(tool) for _ in call["tool_calls"])
        if draw(st.booleans()):
            msgs.append(draw(assistant_text))
    return msgs


conversations = st.one_of(agent_loop(), st.lists(any_message, max_size=8))


@SETTINGS
@given(conversations, st.booleans(), st.booleans())
def test_v31_matches_official_template(msgs: list[dict[str, Any]], thinking: bool, gen: bool) -> None:
    expected = render_official(msgs, "v3.1", add_generation_prompt=gen, thinking=thinking)
    assert render_prompt(msgs, thinking=thinking, add_generation_prompt=gen, version="v3.1",
                         neutralize=False) == expected
    assert render_prompt(msgs, thinking=thinking, add_generation_prompt=gen, version="v3.1-terminus",
                         neutralize=False) == expected


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations, st.booleans())
def test_v3_0324_matches_official_template(msgs: list[dict[str, Any]], gen: bool) -> None:
    expected = render_official(msgs, "v3-0324", add_generation_prompt=gen)
    assert render_prompt(msgs, add_generation_prompt=gen, version="v3-0324", neutralize=False) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations, st.booleans())
def test_v3_dec2024_matches_official_template(msgs: list[dict[str, Any]], gen: bool) -> None:
    expected = render_official(msgs, "v3", add_generation_prompt=gen)
    assert render_prompt(msgs, add_generation_prompt=gen, version="v3", neutralize=False) == expected


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations, st.booleans())
def test_r1_matches_official_template(msgs: list[dict[str, Any]], gen: bool) -> None:
    expected = render_official(msgs, "r1", add_generation_prompt=gen)
    assert render_prompt(msgs, add_generation_prompt=gen, version="r1", neutralize=False) == expected


tool_spec = st.builds(
    lambda n, d, props: {"type": "function", "function": {
        "name": n, "description": d,
        "parameters": {"type": "object", "properties": {k: {"type": "string", "description": v} for k, v in props.items()},
                       "required": sorted(props)}}},
    text, text, st.dictionaries(text, text, max_size=3))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_loop(), st.lists(tool_spec, min_size=1, max_size=3), st.booleans(), st.booleans())
def test_tools_go_into_system_text(msgs: list[dict[str, Any]], tools: list[dict[str, Any]], thinking: bool,
                                   gen: bool) -> None:
    """With tools, the prompt is the template's output for the same conversation whose system text
    ends with ``\\n\\n`` + the tools block (or is the block, when there is no system message)."""
    with_block = msgs + [{"role": "system", "content": render_tools_block(tools)}]
    expected = render_official(with_block, "v3.1", add_generation_prompt=gen, thinking=thinking)
    assert render_prompt(msgs, tools, thinking=thinking, add_generation_prompt=gen, neutralize=False) == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_loop(), st.booleans())
def test_typed_messages_render_like_their_dicts(msgs: list[dict[str, Any]], thinking: bool) -> None:
    typed = [message_from_openai(m) for m in msgs]
    expected = render_official(msgs, "v3.1", add_generation_prompt=True, thinking=thinking)
    assert render_prompt(typed, thinking=thinking, neutralize=False) == expected


def test_reference_example_is_reproduced() -> None:
    """The verified example of reference §2, literally."""
    msgs = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "Weather in SF and NYC?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": '{"location": "SF"}'}},
                {"type": "function", "function": {"name": "get_weather", "arguments": '{"location": "NYC"}'}}]},
            {"role": "tool", "content": "18C"}, {"role": "tool", "content": "25C"},
            {"role": "assistant", "content": "SF 18C, NYC 25C."}, {"role": "user", "content": "Thanks"}]
    expected = ("<｜begin▁of▁sentence｜>SYS<｜User｜>Weather in SF and NYC?<｜Assistant｜></think><｜tool▁calls▁begin｜>"
                "<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"location\": \"SF\"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>"
                "get_weather<｜tool▁sep｜>{\"location\": \"NYC\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
                "<｜tool▁output▁begin｜>18C<｜tool▁output▁end｜><｜tool▁output▁begin｜>25C<｜tool▁output▁end｜>"
                "SF 18C, NYC 25C.<｜end▁of▁sentence｜><｜User｜>Thanks<｜Assistant｜></think>")
    assert render_prompt(msgs) == expected == render_official(msgs, add_generation_prompt=True)


@pytest.mark.parametrize("version", ["v3.1", "v3.1-terminus", "v3-0324", "r1", "v3"])
def test_versions_differ_where_the_templates_do(version: str) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    out = render_prompt(msgs, version=version)
    assert out == render_official(msgs, version, add_generation_prompt=True)
    assert out.endswith({"v3.1": "<｜Assistant｜></think>", "v3.1-terminus": "<｜Assistant｜></think>",
                         "v3-0324": "<｜Assistant｜>", "v3": "<｜Assistant｜>",
                         "r1": "<｜Assistant｜><think>\n"}[version])


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="v3.1"):
        render_prompt([], version="v9")


def test_tools_block_is_the_later_model_card_text() -> None:
    """Reference §2.1 (MC-late), literally: header, one section per tool separated by a blank line,
    ``json.dumps`` (ASCII-escaped, default separators) of each schema, then the format reminder."""
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Météo d'une ville",
                                               "parameters": {"type": "object", "properties": {
                                                   "city": {"type": "string", "description": "ville"}},
                                                   "required": ["city"]}}},
             {"type": "function", "function": {"name": "noop", "description": "Nothing."}}]
    expected = (
        "## Tools\nYou have access to the following tools:\n\n"
        "### get_weather\nDescription: Météo d'une ville\n\n"
        'Parameters: {"type": "object", "properties": {"city": {"type": "string", "description": "ville"}}, '
        '"required": ["city"]}\n\n'
        "### noop\nDescription: Nothing.\n\n"
        'Parameters: {"type": "object", "properties": {}}\n\n'
        "IMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>"
        "{additional_tool_calls}<｜tool▁calls▁end｜>\n\n"
        "Where:\n"
        "- `tool_call_name` must be an exact match to one of the available tools\n"
        "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
        "- For multiple tool calls, chain them directly without separators or spaces")
    assert render_tools_block(tools) == expected
    nonascii = render_tools_block([{"name": "f", "description": "d", "parameters": {"enum": ["é"]}}])
    assert 'Parameters: {"enum": ["\\u00e9"]}' in nonascii  # json.dumps default: ASCII-escaped
    prompt = render_prompt([{"role": "system", "content": "SYS"}, {"role": "user", "content": "Q"}], tools)
    assert prompt == "<｜begin▁of▁sentence｜>SYS\n\n" + expected + "<｜User｜>Q<｜Assistant｜></think>"
    assert render_prompt([{"role": "user", "content": "Q"}], tools).startswith("<｜begin▁of▁sentence｜>## Tools\n")
