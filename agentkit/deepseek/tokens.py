"""Token counting for the DeepSeek V3 family with tiktoken, fully offline.

tiktoken normally downloads its tables; ours ships in ``agentkit/data`` (built from
DeepSeek-V3.1's tokenizer.json by ``scripts/make-token-table``). The pre-tokenizer regex folds
the tokenizer's three split rules into one, and the ranks are DeepSeek's own token ids, so
``encode`` returns real DeepSeek ids. ``count_tokens`` renders the conversation with
``agentkit.deepseek.render`` (byte-identical to the official template) and counts that.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable, Sequence

import orjson
import tiktoken

from agentkit.deepseek import render as ds
from agentkit.messages import Message, SeenConversation, SystemMessage, _Base

TABLE = "deepseek-v3.1"


@functools.lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The DeepSeek V3.1 encoding (loaded once, about 0.3 s)."""
    data = resources.files("agentkit") / "data"
    meta = json.loads((data / f"{TABLE}.json").read_text(encoding="utf-8"))
    ranks: dict[bytes, int] = {}
    with gzip.open(str(data / f"{TABLE}.tiktoken.gz"), "rb") as fh:
        for line in fh:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(name=meta["name"], pat_str=meta["pat_str"], mergeable_ranks=ranks,
                             special_tokens=meta["special_tokens"])


def encode(text: str) -> list[int]:
    """DeepSeek token ids; special-token text (``<｜User｜>``, ``<think>``) counts as the special
    token, as the Hugging Face tokenizer treats it."""
    return encoding().encode(text, allowed_special="all")


def decode(ids: Iterable[int]) -> str:
    return encoding().decode(list(ids))


def count_text(text: str | None) -> int:
    """Token count of ``text``. Special tokens split a text into pieces that tokenize
    independently, so pieces are counted once and cached."""
    return _count_from(text, 0)[0] if text else 0


def _count_from(text: str, start: int) -> tuple[int, int, int]:
    """Tokens of ``text[start:]`` (``start`` must be 0 or just after a special token), the end of
    the last real special token in it (or ``start``), and the tokens before that end."""
    specials = encoding().special_tokens_set
    total = at_last = 0
    pending = last_end = start
    for m in _SPECIAL_SHAPES.finditer(text, start):
        if m.group() not in specials:  # only looks like one: ordinary text
            continue
        if m.start() > pending:
            total += _count_piece(text[pending:m.start()])
        total += 1  # a real special token: one token, and a hard boundary
        pending = last_end = m.end()
        at_last = total
    if pending < len(text):
        total += _count_piece(text[pending:])
    return total, last_end, at_last


class PromptCounter:
    """Counts the successive prompts of one conversation, exactly and cheaply.

    Two reuses, both exact. Rendering: when the new conversation starts with the very message
    objects of the last one (none edited since, no new system message, the same tool schemas),
    only the new messages are rendered, from where the template's state was (V3.1). Tokenizing:
    a special token is a hard token boundary, so everything up to the last special token the
    new prompt shares with the previous one keeps its count; only the rest is tokenized. An
    agent recounting its growing prompt every step pays for the new turns, not the history.
    Edit messages by assigning fields (``SeenConversation`` sees that), not in place.
    """

    __slots__ = ("_prefix", "_tokens", "_rendered")

    def __init__(self) -> None:
        self._prefix = ""  # the previous prompt up to its last special token
        self._tokens = 0  # tokens of ``_prefix``
        self._rendered: _Rendered | None = None

    def count_text(self, text: str) -> int:
        start, base = (len(self._prefix), self._tokens) if self._prefix and text.startswith(self._prefix) else (0, 0)
        total, end, before = _count_from(text, start)
        if end > start or start == 0:
            self._prefix, self._tokens = text[:end], base + before
        return base + total

    def count(self, messages: Sequence[Message | dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
              model: str | None = None) -> int:
        """``count_tokens``, remembering this prompt for the next call."""
        return self.count_text(self.render(messages, tools, model))

    def render(self, messages: Sequence[Message | dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
               model: str | None = None) -> str:
        """``render_for_count``, from the last render's end when the conversation only grew."""
        last = self._rendered
        tools = list(tools) if tools else None
        v31 = _version(model) == "v3.1"
        grown = v31 and last is not None and last.seen.grown_into(messages) and _tools_key(tools) == last.tools
        new = messages[len(last.seen.messages):] if grown and last is not None else ()
        if grown and last is not None and all(isinstance(m, _Base) and not isinstance(m, SystemMessage)
                                              for m in new):
            if new:  # it grew: render the new messages from where the last render ended
                more, state = ds.v31_more(new, last.state, thinking=False)
                last = _Rendered(last.seen.extend(messages), last.tools, last.head, last.body + more, state)
        elif v31 and all(isinstance(m, _Base) for m in messages):
            head, body, state = ds.v31_parts(messages, tools, thinking=False)
            last = _Rendered(SeenConversation(messages), _tools_key(tools), head, body, state)
        else:  # other templates, or OpenAI dicts (which can change in place unseen): render it whole
            self._rendered = None
            return render_for_count(messages, tools, model)
        self._rendered = last
        return last.head + last.body + ds.v31_generation_prompt(last.state, thinking=False, gen=True)


@dataclass
class _Rendered:
    seen: SeenConversation  # the conversation rendered, by identity
    tools: bytes  # its tool schemas, as ``_tools_key`` wrote them
    head: str  # BOS + system text (with the tools block)
    body: str  # the messages' text
    state: Any  # the template's state after them


def _tools_key(tools: list[dict[str, Any]] | None) -> bytes:
    """Tool schemas as canonical JSON: a snapshot that in-place edits cannot reach, compared in
    one step (a deep copy and a deep compare cost several times more)."""
    try:
        return orjson.dumps(tools, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not plain JSON: the standard encoder, with repr() for the rest
        return json.dumps(tools, sort_keys=True, default=repr).encode()


# Shapes every DeepSeek special token has (checked against the table in tests). Text that only
# looks like a special token stays part of the surrounding ordinary text.
_SPECIAL_SHAPES = re.compile(r"(<｜[^｜<>]{1,64}｜>|<\|EOT\|>|</?think>)")


@functools.lru_cache(maxsize=65536)
def _count_piece(piece: str) -> int:
    # A piece holds no special token (``_count_from`` cut them out), so the ordinary encoder
    # counts it the same; ``encode(allowed_special="all")`` hands tiktoken the whole set of 818
    # special tokens on every call, which costs about 150 µs against 4 µs for this.
    return len(encoding().encode_ordinary(piece))


def _version(model: str | None) -> str:
    name = (model or "").lower()
    if "r1" in name and "distill" not in name:
        return "r1"
    if "0324" in name:
        return "v3-0324"
    return "v3.1"


def render_for_count(messages: Sequence[Message | dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                     model: str | None = None) -> str:
    """The prompt text the model would see, as the official template renders it."""
    return ds.render_prompt(messages, tools=list(tools) if tools else None, version=_version(model))


def count_tokens(messages: Sequence[Message | dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                 model: str | None = None) -> int:
    """Tokens of the prompt these messages (and tool schemas) make for a DeepSeek model,
    generation prompt included."""
    return count_text(render_for_count(messages, tools, model))
