"""The parser never raises and never falls into its internal-error path, on random text, on mutated
real completions and under random chunking; and what the renderer writes, the parser reads back."""

from __future__ import annotations

import json
import random
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.deepseek.parse import StreamParser, parse_completion

FAST = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PIECES = ["<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>",
          "<｜tool▁sep｜>", "<|tool▁calls▁begin|>", "<｜tool_call_begin｜>", "<think>", "</think>", "function",
          "```json\n", "\n```", "<｜end▁of▁sentence｜>", "<｜DSML｜function_calls>", "</｜DSML｜function_calls>",
          '<｜DSML｜invoke name="f">', "</｜DSML｜invoke>", '<｜DSML｜parameter name="a" string="false">',
          "</｜DSML｜parameter>", "{", "}", '"', ":", ",", "<", ">", "｜", "\n", " ", "get_weather", '{"a": 1}',
          "[", "]", "\\", "<｜", "｜>", "<|", "|>"]
fragments = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=30).map("".join)

REAL = [
    'Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Tokyo"}'
    '<｜tool▁call▁end｜><｜tool▁call▁begin｜>bash<｜tool▁sep｜>{"command": "ls -la | grep \\"x\\""}'
    "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>",
    "I should search first.</think>Searching.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>"
    '{"questions": "deepseek v3.1||release date"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
    '{"location": "SF"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
    'Found it.\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="fetch">\n<｜DSML｜parameter name="url" '
    'string="true">https://example.org</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>',
    "The answer is 42 [citation:1].<｜end▁of▁sentence｜>",
]


def _no_internal_error(r: Any) -> None:
    assert not any(e.startswith("internal parser error") for e in r.errors), r.errors


def _chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:])]


def _same(a: Any, b: Any) -> None:
    assert (a.reasoning, a.content, a.errors, a.trailing) == (b.reasoning, b.content, b.errors, b.trailing)
    assert [(c.name, c.arguments) for c in a.tool_calls] == [(c.name, c.arguments) for c in b.tool_calls]


@FAST
@given(fragments, st.sampled_from(["v3.1", "v3-0324", "r1"]), st.none() | st.booleans())
def test_random_markup_never_raises(text: str, version: str, thinking: bool | None) -> None:
    r = parse_completion(text, version, thinking=thinking)
    _no_internal_error(r)
    if not r.tool_calls:  # nothing parsed: the text (after any reasoning) is the content
        assert r.content in text


@FAST
@given(fragments, st.lists(st.integers(0, 10_000), max_size=8), st.booleans())
def test_stream_never_raises_and_finish_equals_one_shot(text: str, cuts: list[int], thinking: bool) -> None:
    p = StreamParser(thinking=thinking, strict=True)  # strict: internal errors surface here
    names: list[str] = []
    for chunk in _chunked(text, cuts):
        names += [d.name for d in p.feed(chunk).tool_calls if d.name]
    fin = p.finish()
    names += [d.name for d in fin.tool_calls if d.name]
    result = fin.completion
    assert result is not None
    _same(result, parse_completion(text, thinking=thinking))
    if not result.errors:  # every call shown while streaming is one of the final calls, in order
        final = iter(c.name for c in result.tool_calls)
        assert all(any(n == f for f in final) for n in names), (names, result.tool_calls)


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randint(0, len(text))
        j = min(len(text), i + rng.randint(0, 12))
        if op == 0:
            text = text[:i]  # truncation
        elif op == 1:
            text = text[:i] + text[j:]  # deletion
        elif op == 2:
            text = text[:i] + rng.choice(PIECES) + text[i:]  # stray marker
        elif op == 3:
            text = text[:i] + text[i:j] * 2 + text[j:]  # duplication
        elif op == 4:
            text = text.replace("｜", "|", rng.randint(0, 3))  # ASCII bars
        else:
            text = text[:i] + "".join(rng.choice(string.printable) for _ in range(3)) + text[j:]
    return text


@FAST
@given(st.sampled_from(REAL), st.randoms(use_true_random=False), st.lists(st.integers(0, 500), max_size=5))
def test_mutated_real_completions(text: str, rng: random.Random, cuts: list[int]) -> None:
    mutated = _mutate(text, rng)
    r = parse_completion(mutated)
    _no_internal_error(r)
    p = StreamParser(strict=True)
    for chunk in _chunked(mutated, cuts):
        p.feed(chunk)
    _same(p.finish().completion, r)


def test_real_completions_unmutated() -> None:
    names = [[c.name for c in parse_completion(t).tool_calls] for t in REAL]
    assert names == [["get_weather", "bash"], ["search"], ["get_weather"], ["fetch"], []]


names = st.text(alphabet=string.ascii_letters + string.digits + "_-.", min_size=1, max_size=20)
json_obj = st.dictionaries(st.text(max_size=8), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6), max_size=4)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=30).filter(lambda s: "<" not in s and "</think>" not in s),
       st.lists(st.tuples(names, json_obj, st.sampled_from([None, 2])), min_size=1, max_size=4),
       st.lists(st.integers(0, 10_000), max_size=6))
def test_rendered_calls_parse_back(content: str, calls: list[tuple[str, dict[str, Any], int | None]],
                                   cuts: list[int]) -> None:
    """What the renderer writes for an assistant turn, the parser (one-shot and streamed) reads back."""
    from agentkit.deepseek.render import render_prompt

    msg = {"role": "assistant", "content": content or None,
           "tool_calls": [{"type": "function", "function": {"name": n, "arguments": json.dumps(a, indent=ind)}}
                          for n, a, ind in calls]}
    prefix = render_prompt([{"role": "user", "content": "go"}], add_generation_prompt=True)
    full = render_prompt([{"role": "user", "content": "go"}, msg], add_generation_prompt=False)
    completion = full[len(prefix):]
    r = parse_completion(completion)
    assert r.errors == []
    assert [(c.name, json.loads(c.arguments)) for c in r.tool_calls] == [(n, a) for n, a, _ in calls]
    assert r.content == (content or "").rstrip()
    p = StreamParser(strict=True)
    streamed: dict[int, str] = {}
    for chunk in _chunked(completion, cuts):
        for d in p.feed(chunk).tool_calls:
            streamed[d.index] = streamed.get(d.index, "") + d.arguments
    fin = p.finish()
    _same(fin.completion, r)
    assert [json.loads(streamed[i]) for i in sorted(streamed)] == [a for _, a, _ in calls]


# --------------------------------------------------------------------------- the peers' cases (issue 13 §4)

PEER_CASES = json.loads((__import__("pathlib").Path(__file__).parent / "data" / "deepseek_peer_parser_cases.json")
                        .read_text(encoding="utf-8"))


@FAST
@given(st.sampled_from(PEER_CASES), st.lists(st.integers(0, 10_000), max_size=10), st.booleans())
def test_peer_cases_stream_equals_one_shot_for_any_chunking(case: dict[str, Any], cuts: list[int],
                                                            mutate: bool) -> None:
    """Every vLLM/SGLang/llama.cpp case, in either mode, cut anywhere (and mutated): the streamed
    final result is the one-shot parse."""
    text = _mutate(case["input"], random.Random(len(cuts))) if mutate else case["input"]
    for thinking in (case["thinking"], not case["thinking"]):
        p = StreamParser(thinking=thinking, strict=True)
        for chunk in _chunked(text, cuts):
            p.feed(chunk)
        one = parse_completion(text, thinking=thinking)
        _no_internal_error(one)
        _same(p.finish().completion, one)
