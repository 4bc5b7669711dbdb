"""What the model sees: prompt size, long observations cut, and compaction near the window.

Compaction never edits the trajectory's history; it produces ``Compaction`` records (a slice of
the current context and what replaces it) that the agent logs as events, so the exact prompt of
every call can be rebuilt (``Trajectory.model_calls``).

The prompt cache is a budget of its own. DeepSeek's API (and OpenRouter for DeepSeek models) bills
the prompt tokens that repeat the start of an earlier request at the cache-hit price, about an
eighth of the normal one ($0.07 vs $0.56 per million for ``deepseek-chat``). Step N+1 of a run
repeats all of step N's prompt, so an untouched conversation pays mostly hit prices; a compaction
turns everything from the first rewritten message on into a miss, once. Hence:

- Hysteresis. A compaction starts only past the high-water mark (``compact_at`` of the window,
  or later: never while the next call still fits the window with room for its reply,
  ``reserve`` tokens, the call's max_tokens) and then cuts down to the low-water mark
  (``compact_to``), so it happens rarely and in big steps. A single threshold for both made
  every call after the first compaction compact again, each a miss from near the start.
- Oldest first, one block. Observations are elided from the oldest end in one contiguous block,
  so the system prompt, the tool schemas and the task (the head) stay byte-identical, and so do
  the blocks earlier compactions elided: the prefix up to the new block is still a hit.
- Summaries (``summarize=True``, off by default) are asked for as one more user turn of the
  conversation as it stands, with the same tools, so the summary call's own prompt is a cache
  hit; only the rebuilt context after it ("head + summary + recent turns") is a miss. Trade-offs:
  a summary saves more tokens than eliding (it also drops the assistant turns) and keeps the
  gist of what was elided, but it costs one model call (its output tokens, at the output price)
  and may lose details the model later needs, which eliding keeps findable (the marker says to
  run the tool again). It is used only when eliding alone cannot reach the low-water mark. When
  the conversation does not fit for the summary request (the provider refused it as too long),
  the request is made on the elided context instead, a miss.
- The cost of one compaction is about the low-water size at the miss price; it pays for itself
  when about ``7 × low / (high - low)`` more calls follow at hit prices (8:1 price ratio), which
  is why it waits as long as the reply has room: at a 131k window a 60-step run often needs no
  compaction at all.

What the provider reports is what counts: each call's ``Usage.cached`` (DeepSeek
``prompt_cache_hit_tokens``, OpenAI/OpenRouter ``prompt_tokens_details.cached_tokens``) is
recorded in the trajectory and priced by ``catalog.cost_from_usage``; ``python -m bench cache``
measures the policy on scripted runs.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from pydantic import BaseModel, Field, model_validator

from agentkit.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from agentkit.deepseek.tokens import PromptCounter, count_text, count_tokens

DEFAULT_WINDOW = 128_000
ELIDED = "[observation elided to save context: {n} characters; run the tool again if you need it]"
SUMMARY_PREFIX = "Summary of the earlier part of this session (older messages were replaced to save context):\n\n"
SUMMARY_REQUEST = (
    "Pause the task for a moment: the older part of this conversation is about to be replaced by a summary "
    "you write now. Summarize the conversation so far for yourself to continue from. Keep every fact, file "
    "path, command, result, decision and open question you will need; drop chatter. Do not call any tool; "
    "answer with the summary only.")
SUMMARY_ROOM = 4_096  # tokens the summary request needs besides the conversation it is asked in


class ContextPolicy(BaseModel):
    """How the agent keeps the prompt inside the model's window (see the module docstring)."""

    max_observation_chars: int = 20_000  # longer tool output is cut to head + tail
    compact_at: float = Field(default=0.8, gt=0, le=1)  # high-water mark: share of the window that starts one
    compact_to: float = Field(default=0.5, gt=0, le=1)  # low-water mark: share of the window it cuts down to
    keep_last_turns: int = 4  # assistant turns (with their tool results) never elided; if they alone pass
    # the low-water mark, compactions come often (lower it for small windows)
    summarize: bool = False  # when eliding cannot reach the low-water mark, let the model summarize
    window: int | None = None  # override the catalog's context window
    reserve: int | None = None  # tokens kept free for the reply; None: the agent's max_tokens
    min_elide_chars: int = 200  # observations shorter than this are not worth eliding

    @model_validator(mode="after")
    def _marks_in_order(self) -> "ContextPolicy":
        if self.compact_to > self.compact_at:
            raise ValueError(f"compact_to ({self.compact_to}) must not be above compact_at ({self.compact_at})")
        return self


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
    # the summary call's prompt: this user turn after the context before the compaction ("context")
    # or after the elide event just before this one ("elided")
    summary_request: dict[str, Any] | None = None
    summary_after: str | None = None


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


# Gets the messages of the summary request (the conversation plus SUMMARY_REQUEST); the caller
# sends them with the run's tools, so the request repeats the last prompt: a cache hit.
Summarizer = Callable[[list[Message]], Awaitable[tuple[AssistantMessage, dict[str, Any] | None]]]


class ContextManager:
    """Applies a ``ContextPolicy`` before each model call.

    ``reserve`` (the call's max_tokens) is the room the reply needs; the policy's own ``reserve``
    wins. Without one, compaction starts at the high-water mark."""

    def __init__(self, policy: ContextPolicy, model_name: str | None = None, window: int | None = None,
                 reserve: int | None = None) -> None:
        self.policy = policy
        self.model_name = model_name
        self.window = policy.window or window or DEFAULT_WINDOW
        self.reserve = policy.reserve if policy.reserve is not None else reserve
        self.last_tokens = 0  # the prompt size of the context ``compact`` returned last
        self.counter = PromptCounter()

    @property
    def high_water(self) -> int:
        """A prompt above this many tokens starts a compaction: the ``compact_at`` share of the
        window, or more while the reply still has ``reserve`` tokens of room."""
        high = int(self.window * self.policy.compact_at)
        return max(high, self.window - self.reserve) if self.reserve else high

    @property
    def low_water(self) -> int:
        """A compaction cuts the prompt down to this many tokens (when eliding can)."""
        return min(int(self.window * self.policy.compact_to), self.high_water)

    threshold = high_water  # the name before hysteresis

    def count(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> int:
        return count_prompt(messages, tools, self.model_name, self.counter)

    def cut_observation(self, text: str) -> str:
        return cut_middle(text, self.policy.max_observation_chars)

    async def compact(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                      summarize: Summarizer | None = None,
                      target: int | None = None) -> tuple[list[Message], list[Compaction]]:
        """The context to send, and the compactions that produced it (none when it fits).

        Nothing changes while the prompt is at or below the high-water mark; past it, the oldest
        observations are elided (one block, oldest first) until the prompt is at the low-water
        mark, then, if that was not enough and the policy says so, the model summarizes the
        history before the protected recent turns. ``target`` forces a prompt of at most that
        size (the provider refused the last one as too long); then only the latest turn is
        protected.
        """
        before = self.last_tokens = self.count(messages, tools)
        if target is None and before <= self.high_water:
            return messages, []
        goal = min(self.low_water, target) if target else self.low_water
        done: list[Compaction] = []
        head = head_length(messages)
        keep = max(head, protected_from(messages, 1 if target else self.policy.keep_last_turns))
        new, tokens = self._elide(messages, tools, head, keep, goal, before)
        if new is not messages:
            start, end = self._changed(messages, new)
            done.append(Compaction(strategy="elide", start=start, end=end,
                                   messages=[m.to_openai() for m in new[start:end]],
                                   tokens_before=before, tokens_after=tokens))
        if tokens > goal and self.policy.summarize and summarize is not None and keep > head:
            # asked inside the conversation as it stands (a cache hit) when that still fits
            on_context = target is None and before + min(SUMMARY_ROOM, self.window // 8) <= self.window
            request = UserMessage(content=SUMMARY_REQUEST)
            reply, usage = await summarize([*(messages if on_context else new), request])
            if reply.text.strip():
                summary = UserMessage(content=SUMMARY_PREFIX + reply.text.strip())
                new = new[:head] + [summary] + new[keep:]
                after = self.count(new, tools)
                done.append(Compaction(strategy="summary", start=head, end=keep, messages=[summary.to_openai()],
                                       tokens_before=tokens, tokens_after=after, usage=usage,
                                       summary_message=reply.to_openai(), summary_request=request.to_openai(),
                                       summary_after="context" if on_context or not done else "elided"))
                tokens = after
        self.last_tokens = tokens
        return new, done

    def _elide(self, messages: list[Message], tools: list[dict[str, Any]] | None, head: int, keep: int,
               goal: int, tokens: int) -> tuple[list[Message], int]:
        """Observations in ``messages[head:keep]`` elided oldest first until the prompt is at most
        ``goal`` tokens; each saving is the observation's own token count less the marker's (a
        tool output is tokenized on its own between special tokens), checked by one count at the end."""
        new = messages
        i = head
        while tokens > goal and i < keep:
            if not (isinstance(m := new[i], ToolMessage) and len(m.text) >= self.policy.min_elide_chars):
                i += 1
                continue
            if new is messages:
                new = list(messages)
            marker = ELIDED.format(n=len(m.text))
            new[i] = m.model_copy(update={"content": marker})
            tokens -= count_text(m.text) - count_text(marker)
            i += 1
            if tokens <= goal or i >= keep:
                tokens = self.count(new, tools)  # exact: the estimate only decides when to look
        return new, tokens

    @staticmethod
    def _changed(old: list[Message], new: list[Message]) -> tuple[int, int]:
        changed = [i for i, (a, b) in enumerate(zip(old, new)) if a is not b]
        return changed[0], changed[-1] + 1


__all__ = ["Compaction", "ContextManager", "ContextPolicy", "count_prompt", "cut_middle", "DEFAULT_WINDOW"]
