"""``ModelBase`` (issue 15): a model of one's own needs only ``complete``. Before it, a user wrote
``stream``, ``aclose`` and the context-manager methods by hand even for a model that never
streams (friction found writing the eight-program exercise); the built-in models share it."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit import Agent, Completion, ModelSettings
from agentkit import events as ev
from agentkit.messages import AssistantMessage, Message, Usage
from agentkit.models import Fallback, Model, ModelBase, OnEvent, OpenAICompatible, Replay


class Echo(ModelBase):
    name, provider = "echo-1", "local"

    def __init__(self) -> None:
        self.closed: list[str] = []

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        last = next(m for m in reversed(messages) if m.role == "user")
        return Completion(message=AssistantMessage(content=f"echo: {last.text}", reasoning="thought"),
                          usage=Usage(prompt=3, completion=2))

    async def aclose(self) -> None:
        self.closed.append("aclose")

    def close(self) -> None:
        self.closed.append("close")


def test_a_model_with_only_complete_is_a_model_and_streams() -> None:
    m = Echo()
    assert isinstance(m, Model)
    assert Agent(m).run_sync("hi").answer == "echo: hi"
    seen: list[ev.Event] = []
    result = Agent(m, stream=True).run_sync("again", on_event=seen.append)
    assert result.answer == "echo: again"
    assert [e.text for e in seen if isinstance(e, ev.ContentDelta)] == ["echo: again"]
    assert [e.text for e in seen if isinstance(e, ev.ReasoningDelta)] == ["thought"]


async def test_with_and_async_with_close_the_model() -> None:
    m = Echo()
    with m as same:
        assert same is m
    async with m:
        pass
    assert m.closed == ["close", "aclose"]


def test_complete_is_required() -> None:
    class Nothing(ModelBase):
        pass

    with pytest.raises(TypeError, match="complete"):
        Nothing()  # type: ignore[abstract]


def test_the_built_in_models_share_it() -> None:
    for cls in (OpenAICompatible, Replay, Fallback):
        assert issubclass(cls, ModelBase)
