"""``OpenAICompatible``: the chat-completions client for every OpenAI-compatible provider.

One HTTP client per model and event loop (aiohttp: ``models/clients.py``, under ``HTTPModel`` in
``models/http.py``). Faults that retrying can fix are retried with exponential backoff and
jitter, honouring ``Retry-After``; each retry is reported through ``on_event``. A stream that
fails after it has already yielded output is retried as well, with a ``discarded`` retry event
(the caller drops what it showed); when retries run out it raises ``ModelError`` with the partial
``Completion``. Each call has ``request_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx

from agentkit.errors import ModelError
from agentkit.messages import Message, SeenConversation, Usage, content_text
from agentkit.models.assemble import StreamAssembler, completion_from_body
from agentkit.models.clients import TRANSPORT_ERRORS
from agentkit.models.http import HTTPModel
from agentkit.models.base import Completion, CompletionDelta, ModelEvent, ModelSettings, OnEvent
from agentkit.models.catalog import lookup
from agentkit.models.prompt_tools import grammar_version, parse_prompt_reply, refuses_tools, to_prompt_messages
from agentkit.models.providers import get_provider, key_source, resolve_api_key, resolve_base_url
from agentkit.models.retry import Backoff, stream_error

log = logging.getLogger("agentkit.models")

# ModelSettings fields sent as-is under the same name.
_PASSTHROUGH = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "frequency_penalty",
                "presence_penalty", "stop", "seed", "logit_bias", "response_format", "structured_outputs",
                "tool_choice", "parallel_tool_calls", "reasoning", "provider", "models", "user")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _without_tool_fields(s: ModelSettings) -> ModelSettings:
    """Prompt tool mode: no tool_choice / parallel_tool_calls either (endpoints reject them without tools)."""
    if s.tool_choice is None and s.parallel_tool_calls is None:
        return s
    return s.model_copy(update={"tool_choice": None, "parallel_tool_calls": None})


class OpenAICompatible(HTTPModel):
    """Chat completions over HTTP for any OpenAI-compatible endpoint (see ``providers.py``)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 provider: str = "openai-compatible", settings: ModelSettings | None = None,
                 headers: dict[str, str] | None = None, timeout_s: float = 600.0, connect_timeout_s: float = 15.0,
                 max_retries: int = 4, backoff: Backoff | None = None,
                 stream_complete: bool = False, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.name = model
        self.provider = provider
        self.preset = get_provider(provider).for_model(model)  # its rules for this model (providers.ModelRule)
        self.base_url = resolve_base_url(self.preset, base_url)
        self.key_source = key_source(self.preset, api_key)  # what a 401 names: where this key came from
        self._init_http(api_key=resolve_api_key(self.preset, self.base_url, api_key), headers=headers,
                        timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, max_retries=max_retries,
                        backoff=backoff,
                        transport=transport, sleep=sleep)
        self.settings = settings or ModelSettings()
        self.stream_complete = stream_complete  # complete() via a stream (keeps long generations alive)
        self._prompt_tools: bool | None = None  # auto tool mode: in prompt mode (None: not decided yet)
        self._last_dicts: tuple[SeenConversation, list[dict[str, Any]]] | None = None

    # ------------------------------------------------------------------ plumbing
    def _provider_headers(self, s: ModelSettings) -> dict[str, str]:
        return self.preset.headers(s.app_url, s.app_title)

    def build_body(self, messages: list[Message], tools: list[dict[str, Any]] | None, s: ModelSettings,
                   stream: bool) -> dict[str, Any]:
        """The exact request body: typed settings, the provider's thinking field, then extra_body.
        Message dicts are cached across calls (``_message_dicts``): read them, never edit them."""
        body: dict[str, Any] = {"model": self.name, "messages": self._message_dicts(messages)}
        if tools:
            body["tools"] = tools
        for field in _PASSTHROUGH:
            value = getattr(s, field)
            if value is not None:
                body[field] = value
        self.preset.apply_thinking(body, s.thinking)
        if stream:
            body["stream"] = True
            if self.preset.stream_usage_option:
                body["stream_options"] = {"include_usage": True}
        if s.extra_body:
            body = deep_merge(body, s.extra_body)
        return body

    def _message_dicts(self, messages: list[Message]) -> list[dict[str, Any]]:
        """Each message as this provider gets it. This client's own cache: a conversation that
        only grew since the last call (the same messages, none edited) converts only the new ones."""
        last = self._last_dicts
        if last is not None and last[0].grown_into(messages):
            seen, kept = last[0].extend(messages), last[1]
        else:
            seen, kept = SeenConversation(messages), []
        dicts = kept + [self.preset.adapt_message(m.to_openai()) for m in messages[len(kept):]]
        self._last_dicts = (seen, dicts)
        return dicts

    def _estimate(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> Usage | None:
        """Token counts for servers that report no usage."""
        try:
            from agentkit.deepseek.tokens import count_tokens
        except ImportError:
            return None
        try:
            return Usage(prompt=count_tokens(messages, tools, self.name), cost_usd=None)
        except Exception:  # noqa: BLE001 - an estimate must never fail a call
            return None

    # ------------------------------------------------------------------ complete
    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        """One chat-completions call: the assistant turn for ``messages``, with retries (each reported to
        ``on_event``); raises the typed ``ModelError`` when it cannot answer.
        """
        if self.stream_complete:
            final: Completion | None = None
            async for delta in self._stream(messages, tools, settings, on_event, retry_after_output=True):
                final = delta.completion or final
            assert final is not None
            return final
        s = self.settings.merged(settings)
        if tools and not self._prompt_mode(s, on_event):
            try:
                return await self._complete_native(messages, tools, s, on_event)
            except ModelError as e:
                if not self._switch_to_prompt(e, s, on_event):
                    raise
        if not tools:
            return await self._complete_native(messages, tools, s, on_event)
        version, s = grammar_version(self.name), _without_tool_fields(s)
        comp = await self._complete_native(to_prompt_messages(messages, tools, version), None, s, on_event)
        return parse_prompt_reply(comp, version)

    async def _complete_native(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                               s: ModelSettings, on_event: OnEvent | None) -> Completion:
        body = self.build_body(messages, tools, s, stream=False)
        return await self._retrying(lambda: self._complete_once(body, s, messages, tools), on_event,
                                    s.request_timeout)

    # ------------------------------------------------------------------ tool mode
    def _prompt_mode(self, s: ModelSettings, on_event: OnEvent | None) -> bool:
        """Whether tools go in the prompt: ``tool_mode="prompt"``, or ``auto`` after the endpoint
        refused native tools (or for a catalog entry without native tool calling)."""
        mode = s.tool_mode or "auto"
        if mode != "auto":
            return mode == "prompt"
        if self._prompt_tools is None:
            info = lookup(self.name)
            self._prompt_tools = info is not None and not info.tools
            if self._prompt_tools:
                self._event(on_event, ModelEvent(kind="tool_mode", model=self.name, mode="prompt",
                                                 error="the catalog lists no native tool calling for this model"))
        return self._prompt_tools

    def _switch_to_prompt(self, e: ModelError, s: ModelSettings, on_event: OnEvent | None) -> bool:
        """``auto``: an error saying the endpoint takes no tools moves this model to prompt mode."""
        if (s.tool_mode or "auto") != "auto" or not refuses_tools(e.status, str(e)):
            return False
        self._prompt_tools = True
        self._event(on_event, ModelEvent(kind="tool_mode", model=self.name, mode="prompt", error=str(e),
                                         status=e.status))
        return True

    def thinking_sent(self, thinking: bool | None) -> dict[str, Any]:
        """The request fields that carry ``thinking`` to this provider and model (the run header
        records them): e.g. ``{"model": "deepseek-reasoner"}`` or ``{"thinking": {"type": "enabled"}}``."""
        body: dict[str, Any] = {"model": self.name}
        self.preset.apply_thinking(body, thinking)
        return {k: v for k, v in body.items() if k != "model" or v != self.name}

    @staticmethod
    def _event(on_event: OnEvent | None, event: ModelEvent) -> None:
        if on_event is not None:
            on_event(event)

    async def _complete_once(self, body: dict[str, Any], s: ModelSettings, messages: list[Message],
                             tools: list[dict[str, Any]] | None) -> Completion:
        t0 = time.monotonic()
        try:
            resp = await self._post("/chat/completions", body, s)
        except TRANSPORT_ERRORS as e:
            raise self._transport_error(e) from e
        data = self._read_body(resp)
        estimate = self._estimate(messages, tools) if not data.get("usage") else None
        comp = completion_from_body(data, model=self.name, provider=self.provider,
                                    latency_s=time.monotonic() - t0, estimate=estimate)
        if estimate is not None:
            comp.usage = self._with_completion_estimate(comp)
        return comp

    def _with_completion_estimate(self, comp: Completion) -> Usage:
        usage = comp.usage
        try:
            from agentkit.deepseek.tokens import count_text

            text = content_text(comp.message.content) + (comp.message.reasoning or "") + \
                "".join(c.name + c.arguments for c in comp.message.tool_calls)
            usage = usage.model_copy(update={"completion": count_text(text),
                                             "reasoning": count_text(comp.message.reasoning or "")})
            info = lookup(comp.model) or lookup(self.name)
            usage.cost_usd = info.cost(usage.prompt, usage.completion, usage.cached) if info else None
        except ImportError:
            pass
        return usage

    # ------------------------------------------------------------------ stream
    def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
               settings: ModelSettings | None = None, *,
               on_event: OnEvent | None = None) -> AsyncIterator[CompletionDelta]:
        """As ``complete``, streamed over SSE: content and reasoning deltas, the last one carrying the whole
        ``Completion``; a retry after output was shown is reported with ``discarded=True``.
        """
        return self._stream(messages, tools, settings, on_event, retry_after_output=False)

    async def _stream(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                      settings: ModelSettings | None, on_event: OnEvent | None,
                      retry_after_output: bool) -> AsyncIterator[CompletionDelta]:
        s = self.settings.merged(settings)
        if tools and not self._prompt_mode(s, on_event):
            started = False
            try:
                async for delta in self._stream_native(messages, tools, s, on_event, retry_after_output):
                    started = True
                    yield delta
                return
            except ModelError as e:
                if started or not self._switch_to_prompt(e, s, on_event):
                    raise
        if not tools:
            async for delta in self._stream_native(messages, tools, s, on_event, retry_after_output):
                yield delta
            return
        version, s = grammar_version(self.name), _without_tool_fields(s)
        async for delta in self._stream_native(to_prompt_messages(messages, tools, version), None, s, on_event,
                                               retry_after_output):
            if delta.completion is not None:
                delta = delta.model_copy(update={"completion": parse_prompt_reply(delta.completion, version)})
            yield delta

    async def _stream_native(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                             s: ModelSettings, on_event: OnEvent | None,
                             retry_after_output: bool) -> AsyncIterator[CompletionDelta]:
        body = self.build_body(messages, tools, s, stream=True)
        # complete() via a stream shows nothing until the end, so any failure may retry
        async for delta in self._retrying_stream(lambda: self._stream_once(body, s, messages, tools), on_event,
                                                 s.request_timeout, hold_output=retry_after_output):
            yield delta

    async def _stream_once(self, body: dict[str, Any], s: ModelSettings, messages: list[Message],
                           tools: list[dict[str, Any]] | None) -> AsyncIterator[CompletionDelta]:
        t0 = time.monotonic()
        asm = StreamAssembler(model=self.name, provider=self.provider)
        done = False
        try:
            async with self._open_stream("/chat/completions", body, s) as resp:
                if resp.status_code >= 400:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    raise self._http_error(resp, text)
                ctype = resp.headers.get("content-type", "")
                if "json" in ctype and "event-stream" not in ctype:
                    # Some servers answer a stream request with one JSON body (e.g. an error).
                    text = (await resp.aread()).decode("utf-8", "replace")
                    yield CompletionDelta(completion=self._body_as_stream(text, t0, messages, tools))
                    return
                async for chunk in self._sse_json(resp.aiter_lines(), lambda: asm.partial(time.monotonic() - t0)):
                    if chunk is None:
                        done = True
                        break
                    delta = asm.feed(chunk)
                    if asm.error is not None:
                        raise stream_error(asm.error, model=self.name, provider=self.provider,
                                           context_window=self.context_window,
                                           partial=asm.partial(time.monotonic() - t0))
                    if delta is not None:
                        yield delta
        except TRANSPORT_ERRORS as e:
            raise self._transport_error(e, asm.partial(time.monotonic() - t0)) from e
        if not done and asm.finish_reason is None:
            raise ModelError(f"{self.provider} ({self.name}) stream ended before the reply was finished",
                             retryable=True, partial=asm.partial(time.monotonic() - t0))
        estimate = self._estimate(messages, tools) if asm.raw_usage is None else None
        comp = asm.finish(time.monotonic() - t0, estimate)
        if estimate is not None:
            comp.usage = self._with_completion_estimate(comp)
        yield CompletionDelta(completion=comp)

    def _body_as_stream(self, text: str, t0: float, messages: list[Message],
                        tools: list[dict[str, Any]] | None) -> Completion:
        try:
            data = json.loads(text)
        except ValueError:
            raise ModelError(f"{self.provider} ({self.name}) sent a malformed response body", retryable=True) from None
        if isinstance(data, dict) and data.get("error") is not None and not data.get("choices"):
            raise stream_error(data["error"], model=self.name, provider=self.provider,
                               context_window=self.context_window)
        if not isinstance(data, dict) or not data.get("choices"):
            raise ModelError(f"{self.provider} ({self.name}) returned no choices", retryable=True)
        return completion_from_body(data, model=self.name, provider=self.provider, latency_s=time.monotonic() - t0,
                                    estimate=self._estimate(messages, tools) if not data.get("usage") else None)

    # ------------------------------------------------------------------ sync facades