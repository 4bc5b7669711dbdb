"""The completion parser: the vLLM (V1–V5) and SGLang (S1–S10) vectors of the reference, the cases
vLLM misses, and streaming."""

from __future__ import annotations

import json

import pytest

from agentkit.deepseek import parse as parser_mod
from agentkit.deepseek.parse import StreamParser, parse_completion

B, E = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CB, CE, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"


X1, Y2 = '{"x":1}', '{"y":2}'
BOSTON, TOKYO, QAB = '{"city": "Boston"}', '{"city": "Tokyo"}', '{"questions": "a||b"}'


def call(name: str, args: str) -> str:
    return f"{CB}{name}{SEP}{args}{CE}"


def stream(chunks: list[str], **kw: object):
    """Feed chunks; return (per-chunk deltas, final delta)."""
    p = StreamParser(strict=True, **kw)  # type: ignore[arg-type]
    deltas = [p.feed(c) for c in chunks]
    return deltas, p.finish()


# --------------------------------------------------------------------------- vLLM vectors


def test_v1_one_call_with_prefix() -> None:
    r = parse_completion(f'normal text{B}{call("foo", X1)}{E}')
    assert r.tools_called and [(c.name, c.arguments) for c in r.tool_calls] == [("foo", '{"x":1}')]
    assert r.content == "normal text" and r.errors == []


def test_v2_two_calls_suffix_not_in_content() -> None:
    text = f'some prefix text{B}{call("foo", X1)}{call("bar", Y2)}{E} some suffix text'
    r = parse_completion(text)
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("foo", '{"x":1}'), ("bar", '{"y":2}')]
    assert r.content == "some prefix text"
    assert r.trailing == "some suffix text"  # kept apart, not lost


def test_v3_truncated_is_no_call_whole_text() -> None:
    text = f"Let me look that up.{B}get_weather"
    r = parse_completion(text)
    assert not r.tools_called and r.tool_calls == [] and r.content == text and r.errors


def test_v4_no_call_markers_is_no_call() -> None:
    text = f'{B}foo{SEP}{{"x":1}}{E}'
    r = parse_completion(text)
    assert not r.tools_called and r.content == text


def test_v5_internal_failure_keeps_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM's regex timeout case: whatever goes wrong inside, the caller gets the text as content."""
    def boom(body: str):
        raise TimeoutError("regex timed out")
    monkeypatch.setattr(parser_mod, "find_tool_calls", boom)
    text = f'x{B}{call("foo", "{}")}{E}'
    r = parse_completion(text)
    assert not r.tools_called and r.content == text and "TimeoutError" in r.errors[0]


# --------------------------------------------------------------------------- SGLang vectors


def test_s1_args_in_second_increment() -> None:
    deltas, fin = stream([f'{B}{CB}get_current_weather{SEP}{{"location"', f': "杭州"}}{CE}{E}'])
    assert deltas[0].tool_calls[0].name == "get_current_weather"
    second = deltas[1].tool_calls
    assert len(second) == 1 and second[0].name is None
    args = "".join(d.arguments for dd in deltas for d in dd.tool_calls)
    assert json.loads(args) == {"location": "杭州"}
    assert json.loads(fin.completion.tool_calls[0].arguments) == {"location": "杭州"}


def test_s2_thinking_lookalike_is_text_and_call_streams() -> None:
    chunks = ["</thinking", ">", B, CB, "get_current_weather", SEP, '{"location": "杭州"}', CE, E]
    deltas, fin = stream(chunks)
    assert "".join(d.content for d in deltas) + fin.content == "</thinking>"
    assert all(not d.tool_calls for d in deltas[2:5])
    at_sep = deltas[5].tool_calls
    assert [(d.name, d.arguments) for d in at_sep] == [("get_current_weather", "")]
    nxt = deltas[6].tool_calls
    assert nxt[0].name is None and json.loads(nxt[0].arguments) == {"location": "杭州"}
    assert fin.completion.content == "</thinking>" and len(fin.completion.tool_calls) == 1


def test_s3_one_delta_ends_a_call_and_starts_the_next() -> None:
    chunks = [f"{B}{CB}get_weather{SEP}", f'{{"city": "Tokyo"}}{CE}{CB}get_weather{SEP}',
              f'{{"city": "Paris"}}{CE}{E}']
    deltas, fin = stream(chunks)
    items = [d for dd in deltas for d in dd.tool_calls]
    assert sorted({d.index for d in items if d.name}) == [0, 1]
    args = {i: "".join(d.arguments for d in items if d.index == i) for i in (0, 1)}
    assert args == {0: '{"city": "Tokyo"}', 1: '{"city": "Paris"}'}
    assert [c.arguments for c in fin.completion.tool_calls] == ['{"city": "Tokyo"}', '{"city": "Paris"}']
    # the final calls carry the ids that were streamed
    streamed_ids = [d.id for d in items if d.id]
    assert [c.id for c in fin.completion.tool_calls] == streamed_ids


def test_s4_whole_call_in_one_delta() -> None:
    deltas, fin = stream([f'{B}{CB}get_weather{SEP}{{"city": "Tokyo"}}{CE}{E}'])
    items = deltas[0].tool_calls
    assert [(d.name, d.arguments, d.index) for d in items] == [("get_weather", "", 0), (None, '{"city": "Tokyo"}', 0)]
    assert json.loads(fin.completion.tool_calls[0].arguments) == {"city": "Tokyo"}


def test_s5_progressive_arguments() -> None:
    deltas, _ = stream([f"{B}{CB}get_weather{SEP}", '{"city": "Tok', f'yo"}}{CE}{E}'])
    assert [d.arguments for dd in deltas[1:] for d in dd.tool_calls] == ['{"city": "Tok', 'yo"}']


def test_s6_bad_call_does_not_hide_good_one() -> None:
    text = f'Sure. {B}{call("get_weather", BOSTON)}{call("search", "{bad json")}{E}'
    r = parse_completion(text)
    assert [c.name for c in r.tool_calls] == ["get_weather"]
    assert B not in r.content and r.content == "Sure."
    assert len(r.errors) == 1 and "tool call 2" in r.errors[0] and "JSON" in r.errors[0]


def test_s7_single_increment_matches_one_shot() -> None:
    text = f'Let me check the weather.\n{B}{call("get_weather", TOKYO)}{E}'
    p = StreamParser()
    d = p.feed(text)
    assert d.content == parse_completion(text).content == "Let me check the weather."
    assert p.feed("").content == ""
    assert len(p.finish().completion.tool_calls) == 1


def test_s8_normal_text_first_then_nothing() -> None:
    chunks = [f"Checking.\n{B}", f"{CB}get_weather{SEP}", '{"city":', '"Tokyo"}', f"{CE}{E}"]
    deltas, fin = stream(chunks)
    assert deltas[0].content == "Checking." and all(d.content == "" for d in deltas[1:])
    assert "".join(d.arguments for dd in deltas for d in dd.tool_calls) == '{"city":"Tokyo"}'
    assert fin.content == ""


def test_s9_bare_call_without_block_opener() -> None:
    text = f'Checking.\n{call("get_weather", TOKYO)}'
    r = parse_completion(text)
    assert r.content == "Checking." and [c.name for c in r.tool_calls] == ["get_weather"]
    deltas, fin = stream([text])
    assert deltas[0].content == "Checking." and fin.completion.tool_calls[0].name == "get_weather"


def test_s10_plain_text_unchanged() -> None:
    text = "  The weather is sunny.\n"
    r = parse_completion(text)
    assert r.content == text and not r.tools_called and r.errors == [] and r.reasoning is None
    deltas, fin = stream([text])
    assert "".join(d.content for d in deltas) + fin.content == text


# --------------------------------------------------------------------------- what vLLM misses


def test_pretty_printed_arguments_across_lines() -> None:
    args = json.dumps({"command": "ls -la\necho 'hi'", "nested": {"a": [1, 2]}}, indent=2)
    r = parse_completion(f"{B}{call('bash', chr(10) + args + chr(10))}{E}")
    assert len(r.tool_calls) == 1 and json.loads(r.tool_calls[0].arguments)["nested"] == {"a": [1, 2]}


def test_arguments_containing_angle_brackets_and_markers_like_text() -> None:
    args = json.dumps({"code": "if a < b and b > c: print('<tag>')"})
    r = parse_completion(f"{B}{call('python', args)}{E}")
    assert json.loads(r.tool_calls[0].arguments)["code"].startswith("if a < b")


def test_leading_think_close_and_whole_reasoning_block() -> None:
    r = parse_completion(f'</think>Let me check.{B}{call("f", "{}")}{E}')
    assert r.reasoning is None and r.content == "Let me check." and r.tool_calls[0].name == "f"
    r = parse_completion(f'<think>I should call f.</think>\n\nOK.{B}{call("f", "{}")}{E}')
    assert r.reasoning == "I should call f." and r.content == "\n\nOK." and len(r.tool_calls) == 1
    # Non-thinking (the prompt already closed the reasoning): a later </think> is literal answer
    # text; moving what precedes it into reasoning would hide part of the answer (issue 13 §4).
    r = parse_completion("hmm, the user wants X.</think>The answer is 4.")
    assert r.reasoning is None and r.content == "hmm, the user wants X.</think>The answer is 4."
    # In thinking mode the same text is reasoning, then the answer.
    r = parse_completion("hmm, the user wants X.</think>The answer is 4.", thinking=True)
    assert r.reasoning == "hmm, the user wants X." and r.content == "The answer is 4."


def test_thinking_mode_truncated_reasoning() -> None:
    r = parse_completion("Still thinking about", thinking=True)
    assert r.reasoning == "Still thinking about" and r.content == "" and not r.tools_called
    r = parse_completion("\nreasoning\n</think>answer<｜end▁of▁sentence｜>", version="r1")
    assert r.reasoning == "\nreasoning\n" and r.content == "answer"


def test_legacy_function_grammar_with_fenced_json() -> None:
    text = ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
            '{"location": "SF"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n'
            "```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>")
    r = parse_completion(text, version="v3-0324")
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("get_weather", '{"location": "SF"}'), ("get_time", "{}")]
    deltas, fin = stream([text[:70], text[70:140], text[140:]])
    names = [d.name for dd in deltas for d in dd.tool_calls if d.name]
    assert names == ["get_weather", "get_time"]
    assert [c.arguments for c in fin.completion.tool_calls] == ['{"location": "SF"}', "{}"]


@pytest.mark.parametrize("opener,closer", [
    ("<|tool▁calls▁begin|>", "<|tool▁calls▁end|>"),
    ("<｜tool_calls_begin｜>", "<｜tool_calls_end｜>"),
    ("<｜tool calls begin｜>", "<｜tool calls end｜>"),
    ("<｜tool\\_calls\\_begin｜>", "<｜tool\\_calls\\_end｜>"),
    ("<｜tool▁calls｜>", "<｜tool▁calls▁end｜>"),
])
def test_ascii_bar_and_spelling_variants(opener: str, closer: str) -> None:
    inner = opener.replace("calls", "call").replace("<｜tool▁call｜>", "<｜tool▁call▁begin｜>")
    cb = inner if "begin" in inner else "<｜tool▁call▁begin｜>"
    bar_l, bar_r = ("<|", "|>") if opener.startswith("<|") else ("<｜", "｜>")
    word = "_" if "_" in opener and "\\" not in opener else " " if " " in opener else "▁"
    sep = f"{bar_l}tool{word}sep{bar_r}"
    ce = cb.replace("begin", "end")
    text = f'Hi{opener}{cb}lookup{sep}{{"q": 1}}{ce}{closer}'
    r = parse_completion(text)
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("lookup", '{"q": 1}')], text
    assert r.content == "Hi"


def test_dsml_block_leaked_by_hosted_provider() -> None:
    text = ('Looking it up.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
            '<｜DSML｜parameter name="location" string="true">San Francisco</｜DSML｜parameter>\n'
            '<｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
            '<｜DSML｜invoke name="broken">\n<｜DSML｜parameter name="x" string="false">{nope</｜DSML｜parameter>\n'
            '</｜DSML｜invoke>\n</｜DSML｜function_calls>')
    r = parse_completion(text)
    assert [(c.name, json.loads(c.arguments)) for c in r.tool_calls] == [
        ("get_weather", {"location": "San Francisco", "days": 3})]
    assert r.content == "Looking it up." and len(r.errors) == 1
    deltas, fin = stream([text[:40], text[40:]])
    assert [d.name for dd in deltas for d in dd.tool_calls if d.name] == ["get_weather"]
    assert fin.completion.tool_calls[0].name == "get_weather"


def test_truncated_second_call_keeps_first() -> None:
    text = f'{B}{call("a", "{}")}{CB}b{SEP}{{"x": '
    r = parse_completion(text)
    assert [c.name for c in r.tool_calls] == ["a"] and "tool call 2" in r.errors[0]


def test_trailing_end_of_sentence_is_removed() -> None:
    r = parse_completion("All done.<｜end▁of▁sentence｜>")
    assert r.content == "All done."
    r = parse_completion(f'{B}{call("f", "{}")}{E}<｜end▁of▁sentence｜>')
    assert r.tool_calls[0].name == "f" and r.trailing == ""


def test_empty_arguments_mean_empty_object() -> None:
    r = parse_completion(f"{B}{call('submit', '')}{E}")
    assert r.tool_calls[0].arguments == "{}"


def test_search_markers_are_left_as_opaque_text() -> None:
    r = parse_completion("<｜search▁begin｜>query<｜search▁end｜>")
    assert not r.tools_called and r.content == "<｜search▁begin｜>query<｜search▁end｜>"


def test_reasoning_streams_before_content() -> None:
    chunks = ["Let me th", "ink.</th", "ink>Answer ", "is 4."]
    deltas, fin = stream(chunks, thinking=True)
    assert "".join(d.reasoning for d in deltas) == "Let me think."
    assert "".join(d.content for d in deltas) + fin.content == "Answer is 4."
    assert fin.completion.reasoning == "Let me think." and fin.completion.content == "Answer is 4."


def test_calls_inside_thinking_span_still_parse() -> None:
    """A thinking-mode model that calls a tool before closing its reasoning."""
    text = f'I need data.{B}{call("search", QAB)}{E}'
    r = parse_completion(text, thinking=True)
    assert r.reasoning == "I need data." and r.tool_calls[0].name == "search"
    deltas, fin = stream([text[:5], text[5:30], text[30:]], thinking=True)
    assert "".join(d.reasoning for d in deltas) == "I need data."
    assert fin.completion.tool_calls[0].name == "search"
