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
    kind: str
    step: int = 0
    t: float = Field(default_factory=time.time)


class ModelCallStarted(Event):
    kind: Literal["model_call_started"] = "model_call_started"
    prompt_tokens: int = 0  # our estimate of the prompt, tools included
    max_tokens: int | None = None  # the cap sent with this call
    messages: int = 0


class ModelCallFinished(Event):
    kind: Literal["model_call_finished"] = "model_call_finished"
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str | None = None
    content: str | None = None
    reasoning: str | None = None
    tool_calls: int = 0


class ReasoningDelta(Event):
    kind: Literal["reasoning_delta"] = "reasoning_delta"
    text: str


class ContentDelta(Event):
    kind: Literal["content_delta"] = "content_delta"
    text: str


class ToolCallStarted(Event):
    kind: Literal["tool_call_started"] = "tool_call_started"
    call_id: str
    name: str
    arguments: str


class ToolCallFinished(Event):
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
    kind: Literal["fallback"] = "fallback"
    model: str | None = None
    to_model: str | None = None
    error: str = ""
    discarded: bool = False  # as for ``Retry``: the streamed output of this step is void


class CompactionDone(Event):
    kind: Literal["compaction"] = "compaction"
    strategy: str
    start: int
    end: int
    tokens_before: int
    tokens_after: int


class LimitReached(Event):
    kind: Literal["limit"] = "limit"
    limit: str  # steps | cost | tokens | wall_time
    value: float
    maximum: float


class Warning(Event):  # noqa: A001 - the agent's own warnings (repeats, format errors, model warnings)
    kind: Literal["warning"] = "warning"
    text: str


class RunEnded(Event):
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
