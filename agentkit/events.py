"""Typed events an agent run yields (``async for event in agent.iter(task)``).

For progress displays and user code; the trajectory keeps the durable record. Every event has
a ``kind`` so consumers can ``match`` on it or filter with ``isinstance``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentkit.messages import Usage


class Event(BaseModel):
    """Base of every event ``Agent.iter`` yields: ``kind`` names the type, ``step`` the model call it belongs
    to, ``t`` the wall-clock time.
    """

    kind: str
    step: int = 0
    t: float = Field(default_factory=time.time)


class ModelCallStarted(Event):
    """A model call is about to be sent: ``prompt_tokens`` (our estimate, tools included), ``max_tokens`` (the
    cap sent), ``messages`` (how many).
    """

    kind: Literal["model_call_started"] = "model_call_started"
    prompt_tokens: int = 0  # our estimate of the prompt, tools included
    max_tokens: int | None = None  # the cap sent with this call
    messages: int = 0


class ModelCallFinished(Event):
    """A model call returned: its ``usage``, ``latency_s``, ``finish_reason``, the text and reasoning, and how
    many tool calls it made.
    """

    kind: Literal["model_call_finished"] = "model_call_finished"
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str | None = None
    content: str | None = None
    reasoning: str | None = None
    tool_calls: int = 0


class ReasoningDelta(Event):
    """A piece of streamed reasoning (``Agent(stream=True)``)."""

    kind: Literal["reasoning_delta"] = "reasoning_delta"
    text: str


class ContentDelta(Event):
    """A piece of the streamed reply text (``Agent(stream=True)``)."""

    kind: Literal["content_delta"] = "content_delta"
    text: str


class ToolCallStarted(Event):
    """A tool call is about to run: its id, tool name and JSON ``arguments`` as the model sent them."""

    kind: Literal["tool_call_started"] = "tool_call_started"
    call_id: str
    name: str
    arguments: str


class ToolCallFinished(Event):
    """A tool call ended: ``text`` is what the model is shown, ``is_error`` whether it failed."""

    kind: Literal["tool_call_finished"] = "tool_call_finished"
    call_id: str
    name: str
    text: str  # what the model is shown
    is_error: bool = False
    duration_s: float = 0.0


class Retry(Event):
    """A model call failed and is tried again. ``discarded``: the failed attempt had streamed
    content/reasoning deltas of this step; drop what you showed of them, the reply starts over."""

    kind: Literal["retry"] = "retry"
    model: str | None = None
    attempt: int = 0
    error: str = ""
    status: int | None = None
    wait_s: float = 0.0
    discarded: bool = False


class FallbackUsed(Event):
    """The model failed after its retries and ``Fallback`` moved on to ``to_model``."""

    kind: Literal["fallback"] = "fallback"
    model: str | None = None
    to_model: str | None = None
    error: str = ""
    discarded: bool = False  # as for ``Retry``: the streamed output of this step is void


class CompactionDone(Event):
    """The conversation was compacted to fit the context window: messages ``start``..``end`` by ``strategy``."""

    kind: Literal["compaction"] = "compaction"
    strategy: str
    start: int
    end: int
    tokens_before: int
    tokens_after: int


class LimitReached(Event):
    """A ``Limits`` budget was reached (``limit``: steps, cost, tokens or wall_time); the run ends ``limit``."""

    kind: Literal["limit"] = "limit"
    limit: str  # steps | cost | tokens | wall_time
    value: float
    maximum: float


class Warning(Event):  # noqa: A001 - the agent's own warnings (repeats, format errors, model warnings)
    """A note from the agent runtime to the model (a repeated action, an unreadable reply)."""

    kind: Literal["warning"] = "warning"
    text: str


class RunEnded(Event):
    """The last event of a run: its ``status`` (done, limit, error, cancelled), ``answer`` or ``error``, and
    totals.
    """

    kind: Literal["end"] = "end"
    status: str
    answer: str | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


__all__ = ["CompactionDone", "ContentDelta", "Event", "FallbackUsed", "LimitReached", "ModelCallFinished",
           "ModelCallStarted", "ReasoningDelta", "Retry", "RunEnded", "ToolCallFinished", "ToolCallStarted",
           "Warning"]
