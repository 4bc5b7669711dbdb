"""The model contract every backend implements, and the typed request settings.

``Model.complete`` returns one finished ``Completion``; ``Model.stream`` yields
``CompletionDelta``s whose last item carries the finished ``Completion``. Retries and
fallbacks are reported through ``on_event`` so the agent can log them in the trajectory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, AsyncIterator, Callable, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentkit.messages import AssistantMessage, Message, Usage

DEFAULT_REQUEST_TIMEOUT_S = 300.0


class ModelSettings(BaseModel):
    """Request parameters. ``None`` means "not sent" (the provider's default applies).

    ``thinking`` is the one switch for reasoning; each provider preset maps it to its own field.
    ``extra_body`` is merged last into the request body for anything not typed here.
    ``request_timeout`` (seconds, default 300) bounds one model call from the request to its
    last byte: keep-alive comments reset a read timeout, so a server that sends only those
    would otherwise hold a run forever. A call past it is retried like a dropped connection;
    ``None`` waits without end.
    """

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    response_format: dict[str, Any] | None = None  # {"type": "json_object"} or {"type": "json_schema", ...}
    structured_outputs: bool | dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "none" | "required" | {"type": "function", ...}
    parallel_tool_calls: bool | None = None
    reasoning: dict[str, Any] | None = None  # OpenRouter's reasoning object, sent as given
    thinking: bool | None = None  # the single switch; mapped per provider
    # native: the endpoint's tools; prompt: tools in the system prompt in the family's grammar, calls
    # parsed from the text; auto (None): native, prompt once the endpoint refuses tools
    tool_mode: Literal["native", "prompt", "auto"] | None = None
    provider: dict[str, Any] | None = None  # OpenRouter provider routing
    models: list[str] | None = None  # OpenRouter model fallback list
    user: str | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = None  # per-request read timeout override
    request_timeout: float | None = Field(default=DEFAULT_REQUEST_TIMEOUT_S, gt=0)  # whole call, see above
    # OpenRouter app attribution, sent as HTTP-Referer / X-Title headers (never in the body).
    app_url: str | None = None
    app_title: str | None = None

    def merged(self, other: "ModelSettings | None") -> "ModelSettings":
        """Fields set in ``other`` win; ``extra_body`` dicts are merged."""
        if other is None or not other.model_fields_set:
            return self
        # model_copy, not a dump and a re-validation: this runs for every model call
        update = {f: getattr(other, f) for f in other.model_fields_set}
        update["extra_body"] = {**self.extra_body, **other.extra_body}
        return self.model_copy(update=update)


FinishReason = Literal["stop", "tool_calls", "length", "content_filter", "error"] | str


class Completion(BaseModel):
    """One finished model turn."""

    message: AssistantMessage
    usage: Usage = Field(default_factory=Usage)
    finish_reason: FinishReason | None = None
    model: str | None = None  # the model that actually answered (may differ after fallback)
    provider: str | None = None
    latency_s: float = 0.0
    id: str | None = None
    # Problems found while reading the response that the agent should show the model,
    # e.g. a leaked tool call that could not be parsed.
    warnings: list[str] = Field(default_factory=list)


class ToolCallDelta(BaseModel):
    """A piece of a streamed tool call: its ``index`` in the turn, then its id and name, then pieces of its
    arguments.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""  # the new piece only


class CompletionDelta(BaseModel):
    """A piece of a streamed turn. The final delta has ``completion`` set."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    completion: Completion | None = None


class ModelEvent(BaseModel):
    """Something the model layer did that belongs in the trajectory."""

    kind: Literal["retry", "fallback", "tool_mode"]
    model: str | None = None
    attempt: int = 0
    error: str = ""
    status: int | None = None
    wait_s: float = 0.0
    to_model: str | None = None  # for fallback
    # The failed attempt had already streamed output: whoever showed it should drop it, the
    # next attempt (or model) starts the reply over.
    discarded: bool = False
    mode: str | None = None  # tool_mode: the mode the model switched to ("prompt"), the reason in error


OnEvent = Callable[[ModelEvent], None]


@runtime_checkable
class Model(Protocol):
    """What the agent needs from a model backend."""

    name: str  # e.g. "deepseek/deepseek-chat-v3.1"
    provider: str  # e.g. "openrouter", "replay"

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *,
                       on_event: OnEvent | None = None) -> Completion:
        """One model call: the assistant turn for ``messages`` (``tools``: OpenAI tool schemas);
        retries and fallbacks are reported to ``on_event``. Raises a ``ModelError`` when it cannot answer."""

    def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
               settings: ModelSettings | None = None, *,
               on_event: OnEvent | None = None) -> AsyncIterator[CompletionDelta]:
        """As ``complete``, streamed: content and reasoning deltas, the last one carrying the whole ``Completion``."""

    async def aclose(self) -> None:
        """Close this event loop's connections (the model stays usable)."""


def close_models(models: list[Model]) -> None:
    """Close each model's connections from synchronous code; a model without ``close`` (the
    ``Model`` protocol asks only for ``aclose``) is skipped."""
    for model in models:
        close = getattr(model, "close", None)
        if callable(close):
            close()


class ModelBase(ABC):
    """A base class for a model of your own: write ``complete`` (and set ``name``/``provider``).

    It gives the rest of the ``Model`` protocol: ``stream`` as one delta carrying the whole
    completion (override it to stream for real), ``aclose``/``close`` that close nothing
    (override them to release connections), and both ``async with`` and ``with``, which close."""

    name: str = "model"
    provider: str = "custom"

    @abstractmethod
    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *,
                       on_event: OnEvent | None = None) -> Completion:
        """One model call: the assistant turn for ``messages``; raise a ``ModelError`` when it cannot answer."""

    async def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                     settings: ModelSettings | None = None, *,
                     on_event: OnEvent | None = None) -> AsyncIterator[CompletionDelta]:
        """``complete``, delivered as a stream of one delta: its text, reasoning and the whole completion."""
        done = await self.complete(messages, tools, settings, on_event=on_event)
        yield CompletionDelta(content=done.message.text or None, reasoning=done.message.reasoning,
                              completion=done)

    async def aclose(self) -> None:
        """Close this event loop's connections (none here)."""

    def close(self) -> None:
        """Close every connection, from synchronous code (none here)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
