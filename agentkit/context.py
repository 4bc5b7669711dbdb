"""What the model sees: prompt size, long observations cut, and compaction near the window.

Compaction never edits the trajectory's history; it produces ``Compaction`` records (a slice of
the current context and what replaces it) that the agent logs as events, so the exact prompt of
every call can be rebuilt (``Trajectory.model_calls``).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from pydantic import BaseModel, Field

from agentkit.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from agentkit.tokens import PromptCounter, count_tokens

DEFAULT_WINDOW = 128_000
ELIDED = "[observation elided to save context: {n} characters; run the tool again if you need it]"
SUMMARY_PREFIX = "Summary of the earlier part of this session (older messages were replaced to save context):\n\n"
SUMMARY_INSTRUCTION = (
    "Summarize the conversation below for the agent that will continue it. Keep every fact, file path, "
    "command, result, decision and open question it will need; drop chatter. Answer with the summary only.")


class ContextPolicy(BaseModel):
    """How the agent keeps the prompt inside the model's window."""

    max_observation_chars: int = 20_000  # longer tool output is cut to head + tail
    compact_at: float = Field(default=0.8, gt=0, le=1)  # share of the window that triggers compaction
    keep_last_turns: int = 4  # assistant turns (with their tool results) never elided
    summarize: bool = False  # after eliding, let the model summarize the oldest history
    window: int | None = None  # override the catalog's context window
    min_elide_chars: int = 200  # observations shorter than this are not worth eliding


class Compaction(BaseModel):
    """One rewrite of the context: ``messages`` replace ``context[start:end]``."""

    strategy: str  # "elide" | "summary"
    start: int
    end: int
    messages: list[dict[str, Any]]
    tokens_before: int
    tokens_after: int
    usage: dict[str, Any] | None = None  # the summary call's usage
    summary_message: dict[str, Any] | None = None  # the summary turn as the model wrote it


def count_prompt(messages: list[Message], tools: list[dict[str, Any]] | None = None,
                 model: str | None = None, counter: PromptCounter | None = None) -> int:
    """Tokens of the next prompt (messages + tool schemas), as the model's tokenizer counts them;
    a ``counter`` that counted this conversation before only tokenizes what is new."""
    return counter.count(messages, tools, model) if counter is not None else count_tokens(messages, tools, model)


def cut_middle(text: str, max_chars: int) -> str:
    """Keep the head and tail of ``text`` with a marker saying how much was left out."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    head = max_chars * 2 // 3
    tail = max_chars - head
    left_out = len(text) - head - tail
    return (f"{text[:head]}\n[... {left_out} characters left out of {len(text)} ...]\n"
            f"{text[len(text) - tail:]}")


def head_length(messages: list[Message]) -> int:
    """How many leading messages are the fixed head: system prompt(s) and the task."""
    n = 0
    while n < len(messages) and isinstance(messages[n], SystemMessage):
        n += 1
    if n < len(messages) and isinstance(messages[n], UserMessage):
        n += 1
    return n


def protected_from(messages: list[Message], keep_last_turns: int) -> int:
    """Index of the oldest assistant turn that must be kept verbatim."""
    starts = [i for i, m in enumerate(messages) if isinstance(m, AssistantMessage)]
    if keep_last_turns <= 0 or not starts:
        return len(messages)
    return starts[-keep_last_turns] if len(starts) >= keep_last_turns else starts[0]


def render_transcript(messages: list[Message]) -> str:
    lines = []
    for m in messages:
        if isinstance(m, AssistantMessage):
            calls = "; ".join(f"{c.name}({c.arguments})" for c in m.tool_calls)
            lines.append(f"ASSISTANT: {m.text}" + (f" [calls: {calls}]" if calls else ""))
        elif isinstance(m, ToolMessage):
            lines.append(f"TOOL {m.name or ''}: {m.text}")
        else:
            lines.append(f"{m.role.upper()}: {m.text}")
    return "\n\n".join(lines)


Summarizer = Callable[[list[Message]], Awaitable[tuple[AssistantMessage, dict[str, Any] | None]]]


class ContextManager:
    """Applies a ``ContextPolicy`` before each model call."""

    def __init__(self, policy: ContextPolicy, model_name: str | None = None, window: int | None = None) -> None:
        self.policy = policy
        self.model_name = model_name
        self.window = policy.window or window or DEFAULT_WINDOW
        self.last_tokens = 0  # the prompt size of the context ``compact`` returned last
        self.counter = PromptCounter()

    @property
    def threshold(self) -> int:
        return int(self.window * self.policy.compact_at)

    def count(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> int:
        return count_prompt(messages, tools, self.model_name, self.counter)

    def cut_observation(self, text: str) -> str:
        return cut_middle(text, self.policy.max_observation_chars)

    async def compact(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                      summarize: Summarizer | None = None,
                      target: int | None = None) -> tuple[list[Message], list[Compaction]]:
        """The context to send, and the compactions that produced it (none when it fits).

        ``target`` forces a smaller prompt (the provider refused the last one as too long); then
        only the latest turn is protected.
        """
        threshold = min(self.threshold, target) if target else self.threshold
        before = self.last_tokens = self.count(messages, tools)
        if before <= threshold:
            return messages, []
        done: list[Compaction] = []
        head = head_length(messages)
        keep = max(head, protected_from(messages, 1 if target else self.policy.keep_last_turns))
        new = list(messages)
        changed: list[int] = []
        tokens = before
        for i in range(head, keep):  # oldest observations first
            m = new[i]
            if isinstance(m, ToolMessage) and len(m.text) >= self.policy.min_elide_chars:
                new[i] = m.model_copy(update={"content": ELIDED.format(n=len(m.text))})
                changed.append(i)
                tokens = self.count(new, tools)
                if tokens <= threshold:
                    break
        if changed:
            start, end = changed[0], changed[-1] + 1
            done.append(Compaction(strategy="elide", start=start, end=end,
                                   messages=[m.to_openai() for m in new[start:end]],
                                   tokens_before=before, tokens_after=tokens))
        if tokens > threshold and self.policy.summarize and summarize is not None and keep > head:
            old = new[head:keep]
            reply, usage = await summarize(old)
            summary = UserMessage(content=SUMMARY_PREFIX + reply.text.strip())
            new = new[:head] + [summary] + new[keep:]
            after = self.count(new, tools)
            done.append(Compaction(strategy="summary", start=head, end=keep, messages=[summary.to_openai()],
                                   tokens_before=tokens, tokens_after=after, usage=usage,
                                   summary_message=reply.to_openai()))
        self.last_tokens = done[-1].tokens_after if done else tokens
        return new, done

    @staticmethod
    def summary_prompt(old: list[Message]) -> list[Message]:
        return [SystemMessage(content=SUMMARY_INSTRUCTION), UserMessage(content=render_transcript(old))]


__all__ = ["Compaction", "ContextManager", "ContextPolicy", "count_prompt", "cut_middle", "DEFAULT_WINDOW"]
