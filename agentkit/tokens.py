"""Token counting for the DeepSeek V3 family with tiktoken, fully offline.

tiktoken normally downloads its tables; ours ships in ``agentkit/data`` (built from
DeepSeek-V3.1's tokenizer.json by ``scripts/make-token-table``). The pre-tokenizer regex folds
the tokenizer's three split rules into one, and the ranks are DeepSeek's own token ids, so
``encode`` returns real DeepSeek ids. ``count_tokens`` renders the conversation with
``agentkit.formats.deepseek`` (byte-identical to the official template) and counts that.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
from importlib import resources
from typing import Any, Iterable, Sequence

import tiktoken

from agentkit.messages import Message

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
    independently, so pieces are counted once and cached: an agent recounting a growing
    prompt every step only pays for the new turns."""
    if not text:
        return 0
    specials = encoding().special_tokens_set
    total, pending = 0, []
    for i, piece in enumerate(_SPECIAL_SHAPES.split(text)):
        if i % 2 and piece in specials:  # a real special token: one token, and a hard boundary
            if pending:
                total += _count_piece("".join(pending))
                pending = []
            total += 1
        elif piece:
            pending.append(piece)
    if pending:
        total += _count_piece("".join(pending))
    return total


# Shapes every DeepSeek special token has (checked against the table in tests). Text that only
# looks like a special token stays part of the surrounding ordinary text.
_SPECIAL_SHAPES = re.compile(r"(<｜[^｜<>]{1,64}｜>|<\|EOT\|>|</?think>)")


@functools.lru_cache(maxsize=65536)
def _count_piece(piece: str) -> int:
    return len(encoding().encode(piece, allowed_special="all"))


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
    from agentkit.formats.deepseek import render_prompt

    return render_prompt(messages, tools=list(tools) if tools else None, version=_version(model))


def count_tokens(messages: Sequence[Message | dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None,
                 model: str | None = None) -> int:
    """Tokens of the prompt these messages (and tool schemas) make for a DeepSeek model,
    generation prompt included."""
    return count_text(render_for_count(messages, tools, model))
