"""``Fallback([m1, m2, ...])``: try each model in turn once the one before has given up.

Each model does its own retries first; only its final error moves on to the next model, and
that switch is reported as ``ModelEvent(kind="fallback")`` so the trajectory records it. A
request that is wrong in itself (400/422) would fail everywhere, so it is raised at once. A
stream that had shown output falls back too; its event says ``discarded`` so the caller drops
that output and the next model starts the reply over.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from agentkit.errors import BadRequest, ConfigError, ModelError
from agentkit.messages import Message
from agentkit.models.base import (Completion, CompletionDelta, Model, ModelBase, ModelEvent, ModelSettings, OnEvent,
                                  close_models)


def _final(err: ModelError) -> bool:
    """Errors no other model can fix: the request itself is malformed."""
    return isinstance(err, BadRequest) and err.status in (400, 422)


class Fallback(ModelBase):
    """Models tried in order: when one fails after its own retries, the next one answers, unless the request
    itself is malformed (a 400/422 no other model can fix). Each switch is reported as a ``fallback`` event.
    """

    def __init__(self, models: list[Model]) -> None:
        if not models:
            raise ConfigError("Fallback needs at least one model")
        self.models = list(models)
        self.name = self.models[0].name
        self.provider = self.models[0].provider

    def __repr__(self) -> str:
        return f"Fallback({self.models!r})"

    def _switch(self, on_event: OnEvent | None, i: int, err: ModelError, discarded: bool = False) -> None:
        if on_event is not None:
            on_event(ModelEvent(kind="fallback", model=self.models[i].name, attempt=i + 1, error=str(err),
                                status=err.status, to_model=self.models[i + 1].name, discarded=discarded))

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        """The first model's completion that succeeds (see the class)."""
        for i, model in enumerate(self.models):
            try:
                return await model.complete(messages, tools, settings, on_event=on_event)
            except ModelError as err:
                if _final(err) or i == len(self.models) - 1:
                    raise
                self._switch(on_event, i, err)
        raise AssertionError("unreachable")

    async def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                     settings: ModelSettings | None = None, *,
                     on_event: OnEvent | None = None) -> AsyncIterator[CompletionDelta]:
        """As ``complete``, streamed; a switch after output was shown is reported with ``discarded=True``."""
        for i, model in enumerate(self.models):
            shown = False
            try:
                async for delta in model.stream(messages, tools, settings, on_event=on_event):
                    shown = shown or delta.completion is None
                    yield delta
                return
            except ModelError as err:
                if _final(err) or i == len(self.models) - 1:
                    raise
                self._switch(on_event, i, err, discarded=shown)

    async def aclose(self) -> None:
        """Close each model's connections of this event loop."""
        for model in self.models:
            await model.aclose()

    def close(self) -> None:
        """Close each model's connections, from synchronous code (models without ``close`` are skipped)."""
        close_models(self.models)
