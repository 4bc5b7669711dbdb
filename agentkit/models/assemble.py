"""Turn provider responses (a whole JSON body, or streamed chunks) into a ``Completion``.

The stream assembler is the one place that knows the chunk shapes: tool-call deltas are
keyed by ``index`` (name and arguments arrive in pieces, several calls interleaved), reasoning
arrives as ``reasoning_content``, ``reasoning`` or ``reasoning_details``, and usage rides on
the last chunk (with or without choices).
"""

from __future__ import annotations

import json
from typing import Any

from agentkit.deepseek.repair import repair_message
from agentkit.messages import AssistantMessage, ToolCall, Usage, message_from_openai, new_tool_call_id
from agentkit.models.base import Completion, CompletionDelta, ToolCallDelta
from agentkit.models.catalog import cost_from_usage, lookup

_LEAK_MARKERS = ("<｜", "<|")


def usage_from_raw(raw: dict[str, Any] | None, model: str | None) -> Usage | None:
    """Our ``Usage`` from an OpenAI/OpenRouter/DeepSeek usage object (None when absent)."""
    if not isinstance(raw, dict):
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
    if not cached:
        cached = raw.get("prompt_cache_hit_tokens") or 0
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else 0
    prompt = raw.get("prompt_tokens")
    if prompt is None:  # DeepSeek's own split: every prompt token is a cache hit or a miss
        prompt = (raw.get("prompt_cache_hit_tokens") or 0) + (raw.get("prompt_cache_miss_tokens") or 0)
    usage = Usage(prompt=int(prompt or 0), completion=int(raw.get("completion_tokens") or 0),
                  reasoning=int(reasoning or 0), cached=int(cached or 0), cost_usd=None)
    usage.cost_usd = cost_from_usage(model, raw, usage)
    return usage


def repair_leaks(message: AssistantMessage) -> tuple[AssistantMessage, list[str]]:
    """Hand content with leaked DeepSeek tool-call markup to the repairer (``deepseek/repair.py``)."""
    text = message.content if isinstance(message.content, str) else ""
    if not any(m in text for m in _LEAK_MARKERS) and not any(m in (message.reasoning or "") for m in _LEAK_MARKERS):
        return message, []
    fixed, warnings = repair_message(message)
    return fixed, list(warnings)


def completion_from_body(data: dict[str, Any], *, model: str, provider: str, latency_s: float,
                         estimate: Usage | None = None) -> Completion:
    """A ``Completion`` from a non-streamed chat completion body."""
    choice = (data.get("choices") or [{}])[0] or {}
    raw_msg = dict(choice.get("message") or {})
    raw_msg["role"] = "assistant"
    for k in ("refusal", "audio", "function_call", "annotations"):  # response-only, empty: not worth echoing
        if raw_msg.get(k) in (None, []):
            raw_msg.pop(k, None)
    if raw_msg.get("tool_calls"):
        raw_msg.pop("function_call", None)  # the deprecated duplicate some servers add (llama-cpp-python)
    msg = message_from_openai(raw_msg)
    assert isinstance(msg, AssistantMessage)
    for call in msg.tool_calls:
        call.extra.pop("index", None)
    msg, warnings = repair_leaks(msg)
    answered = data.get("model") or model
    usage = usage_from_raw(data.get("usage"), _cost_model(answered, model)) or _estimated(estimate, answered, model)
    return Completion(message=msg, usage=usage, finish_reason=choice.get("finish_reason"), model=answered,
                      provider=data.get("provider") or provider, latency_s=latency_s, id=data.get("id"),
                      warnings=warnings)


def _cost_model(answered: str | None, requested: str) -> str:
    return answered if answered and lookup(answered) else requested


def _estimated(estimate: Usage | None, answered: str | None, requested: str) -> Usage:
    if estimate is None:
        return Usage(cost_usd=None)
    usage = estimate.model_copy()
    usage.cost_usd = cost_from_usage(_cost_model(answered, requested), None, usage)
    return usage


class StreamAssembler:
    """Feed chunks in order; read ``partial()`` at any time and ``finish()`` at the end."""

    def __init__(self, *, model: str, provider: str) -> None:
        self.requested_model = model
        self.provider = provider
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_key: str | None = None
        self.details: list[dict[str, Any]] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.raw_usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.id: str | None = None
        self.provider_reported: str | None = None
        self.error: Any = None

    def feed(self, chunk: dict[str, Any]) -> CompletionDelta | None:
        """Absorb one chunk; returns the visible new pieces (None when there are none)."""
        self.id = self.id or chunk.get("id")
        self.model = chunk.get("model") or self.model
        self.provider_reported = chunk.get("provider") or self.provider_reported
        if isinstance(chunk.get("usage"), dict):
            self.raw_usage = chunk["usage"]
        if chunk.get("error") is not None:
            self.error = chunk["error"]
        out = CompletionDelta()
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
            delta = choice.get("delta") or {}
            if "text" in choice and not delta:  # a /completions chunk
                delta = {"content": choice.get("text")}
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                self.content.append(piece)
                out.content = piece
            for key in ("reasoning_content", "reasoning"):
                r = delta.get(key)
                if isinstance(r, str) and r:
                    self.reasoning_key = self.reasoning_key or key
                    self.reasoning.append(r)
                    out.reasoning = (out.reasoning or "") + r
                    break
            else:
                for d in delta.get("reasoning_details") or []:
                    if not isinstance(d, dict):
                        continue
                    text = d.get("text") or d.get("summary") or ""
                    self._add_detail(d)
                    if text:
                        self.reasoning.append(text)
                        out.reasoning = (out.reasoning or "") + text
            for tc in delta.get("tool_calls") or []:
                out.tool_calls.append(self._add_call(tc))
        if out.content is None and out.reasoning is None and not out.tool_calls:
            return None
        return out

    def _add_detail(self, d: dict[str, Any]) -> None:
        last = self.details[-1] if self.details else None
        if last is not None and last.get("type") == d.get("type") and last.get("index") == d.get("index") \
                and d.get("type") in ("reasoning.text", "reasoning.summary"):
            key = "text" if d.get("type") == "reasoning.text" else "summary"
            last[key] = (last.get(key) or "") + (d.get(key) or "")
            for k, v in d.items():
                if k != key and v is not None:
                    last[k] = v
        else:
            self.details.append(dict(d))

    def _add_call(self, tc: dict[str, Any]) -> ToolCallDelta:
        index = tc.get("index")
        if not isinstance(index, int):
            index = len(self.calls) if tc.get("id") and tc.get("id") not in {c["id"] for c in self.calls.values()} \
                else max(self.calls, default=0)
        slot = self.calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
        fn = tc.get("function") or {}
        if tc.get("id"):
            slot["id"] = tc["id"]
        name = fn.get("name")
        if name:
            # Most servers send the name once; a few repeat the whole name on every delta.
            if name != slot["name"]:
                slot["name"] += name
        args = fn.get("arguments")
        if args is None:
            args = ""
        elif not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        slot["arguments"] += args
        return ToolCallDelta(index=index, id=tc.get("id"), name=name or None, arguments=args)

    def message(self) -> AssistantMessage:
        calls = [ToolCall(id=c["id"] or new_tool_call_id(), name=c["name"], arguments=c["arguments"])
                 for _, c in sorted(self.calls.items())]
        text = "".join(self.content)
        reasoning = "".join(self.reasoning) if self.reasoning else None
        return AssistantMessage(content=text if text or not calls else None, reasoning=reasoning,
                                reasoning_key=self.reasoning_key if reasoning is not None else None,
                                reasoning_details=self.details or None, tool_calls=calls)

    def partial(self, latency_s: float = 0.0) -> Completion:
        """What arrived so far, as a Completion (finish_reason "error" unless one came)."""
        answered = self.model or self.requested_model
        usage = usage_from_raw(self.raw_usage, _cost_model(answered, self.requested_model)) or Usage(cost_usd=None)
        return Completion(message=self.message(), usage=usage, finish_reason=self.finish_reason or "error",
                          model=answered, provider=self.provider_reported or self.provider, latency_s=latency_s,
                          id=self.id)

    def finish(self, latency_s: float, estimate: Usage | None = None) -> Completion:
        msg, warnings = repair_leaks(self.message())
        answered = self.model or self.requested_model
        usage = usage_from_raw(self.raw_usage, _cost_model(answered, self.requested_model)) or \
            _estimated(estimate, answered, self.requested_model)
        return Completion(message=msg, usage=usage, finish_reason=self.finish_reason, model=answered,
                          provider=self.provider_reported or self.provider, latency_s=latency_s, id=self.id,
                          warnings=warnings)
