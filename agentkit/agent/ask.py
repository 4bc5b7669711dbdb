"""Asking the model for one turn: one call, or a stream whose pieces become events as they come.
Either way the finished turn goes to the run record, and a retry or fallback the model layer
reports is shown before what follows it (it may void the pieces shown before it)."""

from __future__ import annotations

from typing import Any, AsyncIterator

from agentkit import events as ev
from agentkit.agent.record import RunRecord
from agentkit.errors import ModelError
from agentkit.messages import Message
from agentkit.models.base import Completion, Model, ModelSettings


async def ask(model: Model, rec: RunRecord, messages: list[Message], tools: list[dict[str, Any]] | None,
              settings: ModelSettings, stream: bool) -> AsyncIterator[ev.Event]:
    """One model call for the run's next step; its reply is ``rec.completion`` afterwards."""
    step, completion = rec.steps + 1, None
    if stream:
        async for d in model.stream(messages, tools, settings, on_event=rec.model_event):
            for e in rec.flush():
                yield e
            if d.reasoning:
                yield ev.ReasoningDelta(step=step, text=d.reasoning)
            if d.content:
                yield ev.ContentDelta(step=step, text=d.content)
            completion = d.completion or completion
        if completion is None:
            raise ModelError("the model's stream ended without a final message; retry the run")
    else:
        completion = await model.complete(messages, tools, settings, on_event=rec.model_event)
    rec.add_reply(completion)
    for e in rec.flush():
        yield e
    yield finished(step, completion)


def finished(step: int, c: Completion) -> ev.ModelCallFinished:
    return ev.ModelCallFinished(step=step, usage=c.usage, latency_s=c.latency_s, finish_reason=c.finish_reason,
                                content=c.message.text or None, reasoning=c.message.reasoning,
                                tool_calls=len(c.message.tool_calls))
