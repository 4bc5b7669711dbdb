"""Repair assistant messages whose provider leaked DeepSeek markup into ``content``.

Some chat-completions servers do not run a DeepSeek tool parser (or run one that misses a case),
so ``content`` arrives holding ``<｜tool▁calls▁begin｜>…`` or a ``…</think>`` reasoning prefix.
``repair_message`` moves those calls into ``tool_calls`` and the reasoning into ``reasoning``,
strips any stray ``<｜…｜>`` markers from the visible text, and says what it did, so the agent can
log it and tell the model about calls that could not be used.
"""

from __future__ import annotations

import re

from agentkit.deepseek.parse import BLOCK_START_RE, parse_completion
from agentkit.deepseek.special import MARKER_RE, THINK_BEGIN, THINK_END
from agentkit.messages import AssistantMessage, content_text

_HINTS = ("<｜", "<|", THINK_END, THINK_BEGIN)


def needs_repair(text: str) -> bool:
    """Cheap check: could ``text`` hold leaked markup at all?"""
    return any(h in text for h in _HINTS)


def strip_markers(text: str) -> tuple[str, list[str]]:
    """Remove ``<｜…｜>``-style markers; return the text and the distinct markers removed."""
    found: list[str] = []

    def drop(m: re.Match[str]) -> str:
        if m.group(0) not in found:
            found.append(m.group(0))
        return ""

    return MARKER_RE.sub(drop, text), found


def _reasoning_leaked(text: str, thinking: bool | None) -> bool:
    """Whether a ``…</think>`` in ``text`` ends leaked reasoning rather than being answer text.

    No ``</think>``: no. Thinking on: yes. Thinking off: no (a ``</think>`` inside a non-thinking answer is literal;
    moving the text before it would hide part of the answer). Unknown: only when the closer is
    followed directly by a tool block, i.e. there is no answer text after it to lose."""
    close = text.find(THINK_END)
    if close < 0:  # the provider already split the reasoning off (or there was none)
        return False
    if thinking is not None:
        return thinking
    return BLOCK_START_RE.match(text[close + len(THINK_END):].lstrip()) is not None


def repair_message(msg: AssistantMessage, *, thinking: bool | None = None) -> tuple[AssistantMessage, list[str]]:
    """Return a repaired copy of ``msg`` and warnings (empty, with ``msg`` itself, when nothing leaked).

    ``thinking``: whether the request asked for reasoning (None: not known). It decides what a
    ``</think>`` in the text means; see ``_reasoning_leaked``."""
    text = content_text(msg.content)
    if not text or not needs_repair(text):
        return msg, []
    parsed = parse_completion(text, thinking=_reasoning_leaked(text, thinking))
    warnings: list[str] = []
    update: dict[str, object] = {}
    tool_calls = list(msg.tool_calls)
    if parsed.tool_calls:
        seen = {(c.name, c.arguments) for c in tool_calls}
        new = [c for c in parsed.tool_calls if (c.name, c.arguments) not in seen]
        tool_calls.extend(new)
        update["tool_calls"] = tool_calls
        warnings.append(f"moved {len(new)} tool call(s) the provider left in the message text into tool_calls "
                        f"({', '.join(c.name for c in new) or 'duplicates of structured calls'})")
        if parsed.trailing.strip():
            warnings.append(f"dropped {len(parsed.trailing)} characters after the leaked tool-call block")
    for err in parsed.errors:
        warnings.append(f"a tool call in the message text could not be used: {err}")
    if parsed.reasoning is not None:
        if msg.reasoning:
            update["reasoning"] = msg.reasoning + "\n" + parsed.reasoning
        else:
            update["reasoning"] = parsed.reasoning
        warnings.append("moved reasoning that ended with </think> out of the message text")
    visible = parsed.content if (parsed.tool_calls or parsed.reasoning is not None) else text
    visible, markers = strip_markers(visible)
    if markers:
        warnings.append("removed stray special tokens from the message text: " + " ".join(markers[:8]))
    if visible != text:
        update["content"] = None if (not visible.strip() and tool_calls) else visible
    if not update:
        return msg, warnings
    return msg.model_copy(update=update, deep=True), warnings
