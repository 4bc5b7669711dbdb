"""A scripted model: plays recorded assistant turns, so runs reproduce offline.

The script is JSONL, one assistant turn per line in OpenAI form (``content``, optional
``reasoning``/``reasoning_content``, optional ``tool_calls`` with string ``arguments``). A
trajectory file works too: its assistant message records are the turns. Each call plays the
next turn; running out raises a ``ModelError`` that says so. ``skip(n)`` moves past turns a
resumed run already has.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, AsyncIterator

from agentkit.errors import ConfigError, ModelError
from agentkit.messages import AssistantMessage, Message, Usage, message_from_openai
from agentkit.models.base import (
    Completion,
    CompletionDelta,
    ModelSettings,
    OnEvent,
    ToolCallDelta,
    ModelBase,
)
from agentkit.deepseek.tokens import count_text, count_tokens


def _load_turns(source: str | os.PathLike[str] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(source, list):
        items = source
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"replay script {path} does not exist; pass a JSONL file of assistant turns")
        from agentkit.trajectory import read_records

        try:
            items = read_records(path)
        except ValueError as exc:
            raise ConfigError(f"replay script {path} is not valid JSONL: {exc}") from None
    if items and items[0].get("type") == "run":  # a trajectory: take its assistant messages
        turns = []
        for r in items:  # model-written summaries (compaction events) were turns too
            if r.get("type") == "message" and (r.get("message") or {}).get("role") == "assistant":
                turns.append(r["message"])
            elif r.get("type") == "event" and r.get("summary_message"):
                turns.append(r["summary_message"])
        return turns
    return [dict(t) for t in items]


def _turn_message(turn: dict[str, Any], position: int) -> AssistantMessage:
    data = {k: v for k, v in turn.items() if k not in ("usage", "finish_reason", "warnings")}
    data["role"] = "assistant"
    for index, call in enumerate(data.get("tool_calls") or []):  # short form {"name", "arguments"} too
        call.setdefault("id", f"call_r{position}_{index}")  # deterministic ids for replays
        if "function" not in call:
            call["function"] = {"name": call.pop("name", ""), "arguments": call.pop("arguments", "{}")}
            call.setdefault("type", "function")
        fn = call["function"]
        if not isinstance(fn.get("arguments"), str):
            fn["arguments"] = json.dumps(fn.get("arguments") or {}, ensure_ascii=False)
    msg = message_from_openai(data)
    assert isinstance(msg, AssistantMessage)
    return msg


def _estimate(messages: list[Message], tools: list[dict[str, Any]] | None, out: AssistantMessage) -> Usage:
    """Token usage as the model's tokenizer would count this prompt and turn (a replay has no server)."""
    completion = count_text((out.text or "") + (out.reasoning or "") + "".join(
        c.name + c.arguments for c in out.tool_calls))
    reasoning = count_text(out.reasoning) if out.reasoning else 0
    return Usage(prompt=count_tokens(messages, tools), completion=completion,
                 reasoning=min(reasoning, completion), cost_usd=0.0)


class Replay(ModelBase):
    """Plays assistant turns from a script or trajectory, in order (the ``Model`` protocol)."""

    provider = "replay"

    def __init__(self, source: str | os.PathLike[str] | list[dict[str, Any]], name: str | None = None,
                 chunk_chars: int = 16) -> None:
        self.turns = _load_turns(source)
        self.source = None if isinstance(source, list) else str(source)
        self.name = name or ("replay:" + self.source if self.source else "replay")
        self.position = 0
        self.chunk_chars = max(1, chunk_chars)
        self.calls: list[dict[str, Any]] = []  # what each call received, for tests and debugging

    def skip(self, n: int) -> None:
        """Move past ``n`` turns (a resumed run already has them)."""
        self.position = min(len(self.turns), self.position + max(0, n))

    @property
    def remaining(self) -> int:
        """Turns of the script not played yet."""
        return len(self.turns) - self.position

    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *,
                       on_event: OnEvent | None = None) -> Completion:
        """The next scripted turn as a ``Completion`` (raises ``ModelError`` when the script ran out)."""
        if self.position >= len(self.turns):
            raise ModelError(f"replay script ran out after {len(self.turns)} turns"
                             f"{' in ' + self.source if self.source else ''}; add turns to the script")
        turn = self.turns[self.position]
        self.position += 1
        self.calls.append({"messages": list(messages), "tools": tools, "settings": settings})
        msg = _turn_message(json.loads(json.dumps(turn)), self.position)
        # A script may fix the usage (cost included) to test budgets; else it is estimated, cost 0.
        usage = Usage(**turn["usage"]) if isinstance(turn.get("usage"), dict) else _estimate(messages, tools, msg)
        finish = turn.get("finish_reason") or ("tool_calls" if msg.tool_calls else "stop")
        return Completion(message=msg, usage=usage, finish_reason=finish, model=self.name,
                          provider=self.provider, latency_s=0.0,
                          warnings=list(turn.get("warnings") or []))

    async def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                     settings: ModelSettings | None = None, *,
                     on_event: OnEvent | None = None) -> AsyncIterator[CompletionDelta]:
        """The next scripted turn in small deltas, ending with the whole ``Completion``."""
        completion = await self.complete(messages, tools, settings, on_event=on_event)
        msg, n = completion.message, self.chunk_chars
        for i in range(0, len(msg.reasoning or ""), n):
            yield CompletionDelta(reasoning=msg.reasoning[i:i + n])  # type: ignore[index]
        for i in range(0, len(msg.text), n):
            yield CompletionDelta(content=msg.text[i:i + n])
        for index, call in enumerate(msg.tool_calls):
            yield CompletionDelta(tool_calls=[ToolCallDelta(index=index, id=call.id, name=call.name)])
            for i in range(0, len(call.arguments), n):
                yield CompletionDelta(tool_calls=[ToolCallDelta(index=index, arguments=call.arguments[i:i + n])])
        yield CompletionDelta(completion=completion)



__all__ = ["Replay"]
