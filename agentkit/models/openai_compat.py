"""``OpenAICompatible``: the chat-completions client for every OpenAI-compatible provider.

One shared ``httpx.AsyncClient`` per model (per event loop). Faults that retrying can fix are
retried with exponential backoff and jitter, honouring ``Retry-After``; each retry is reported
through ``on_event``. A stream that fails after it has already yielded output is not retried
(the caller has shown that output); it raises ``ModelError`` with the partial ``Completion``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx

from agentkit.errors import ModelError, RateLimited
from agentkit.messages import Message, Usage, content_text, messages_to_openai
from agentkit.models.assemble import StreamAssembler, completion_from_body
from agentkit.models.http import make_client
from agentkit.models.base import Completion, CompletionDelta, ModelEvent, ModelSettings, OnEvent
from agentkit.models.catalog import lookup
from agentkit.models.providers import get_provider, resolve_api_key, resolve_base_url
from agentkit.models.retry import Backoff, http_error, stream_error
from agentkit.models.sse import iter_sse_data

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


async def _until(lines: AsyncIterator[str], deadline: float | None) -> AsyncIterator[str]:
    """Pass lines through, failing once ``deadline`` passes: keep-alive comments reset the read
    timeout, so a server that only ever sends them would otherwise hold the call forever."""
    async for line in lines:
        if deadline is not None and time.monotonic() > deadline:
            raise asyncio.TimeoutError()
        yield line


class OpenAICompatible:
    """Chat completions over HTTP for any OpenAI-compatible endpoint (see ``providers.py``)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 provider: str = "openai-compatible", settings: ModelSettings | None = None,
                 headers: dict[str, str] | None = None, timeout_s: float = 600.0, connect_timeout_s: float = 15.0,
                 attempt_timeout_s: float | None = None, max_retries: int = 4, backoff: Backoff | None = None,
                 stream_complete: bool = False, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.name = model
        self.provider = provider
        self.preset = get_provider(provider)
        self.base_url = resolve_base_url(self.preset, base_url)
        self._api_key = resolve_api_key(self.preset, self.base_url, api_key)
        self.settings = settings or ModelSettings()
        self.extra_headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.attempt_timeout_s = attempt_timeout_s  # wall limit per attempt (a server that only sends keep-alives)
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self.stream_complete = stream_complete  # complete() via a stream (keeps long generations alive)
        self._transport = transport
        self._sleep = sleep
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        info = lookup(model)
        self.context_window = info.context_window if info else None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatible(model={self.name!r}, provider={self.provider!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------------ plumbing
    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            for old in [lp for lp in self._clients if lp.is_closed()]:
                self._clients.pop(old, None)
            client = make_client(self.base_url, timeout_s=self.timeout_s,
                                 connect_timeout_s=self.connect_timeout_s, transport=self._transport)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def _headers(self, s: ModelSettings, stream: bool) -> dict[str, str]:
        from agentkit import __version__

        h = {"Content-Type": "application/json", "User-Agent": f"agentkit/{__version__}",
             "Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        h.update(self.preset.headers(s.app_url, s.app_title))
        h.update(self.extra_headers)
        return h

    def _timeout(self, s: ModelSettings) -> httpx.Timeout:
        read = s.timeout_s or self.timeout_s
        return httpx.Timeout(read, connect=self.connect_timeout_s)

    def build_body(self, messages: list[Message], tools: list[dict[str, Any]] | None, s: ModelSettings,
                   stream: bool) -> dict[str, Any]:
        """The exact request body: typed settings, the provider's thinking field, then extra_body."""
        body: dict[str, Any] = {"model": self.name,
                                "messages": [self.preset.adapt_message(m) for m in messages_to_openai(messages)]}
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

    def _estimate(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> Usage | None:
        """Token counts for servers that report no usage."""
        try:
            from agentkit.tokens import count_tokens
        except ImportError:
            return None
        try:
            return Usage(prompt=count_tokens(messages, tools, self.name), cost_usd=None)
        except Exception:  # noqa: BLE001 - an estimate must never fail a call
            return None

    def _event(self, on_event: OnEvent | None, event: ModelEvent) -> None:
        log.info("model %s: %s (attempt %d%s) %s", self.name, event.kind, event.attempt,
                 f", waiting {event.wait_s:.1f}s" if event.wait_s else "", event.error)
        if on_event is not None:
            on_event(event)

    async def _retry_wait(self, err: ModelError, attempt: int, on_event: OnEvent | None) -> None:
        """Sleep before the next attempt, or re-raise when retrying is pointless or used up."""
        retry_after = getattr(err, "retry_after", None)
        if retry_after is None:
            retry_after = err.details.get("retry_after") if isinstance(err.details.get("retry_after"),
                                                                         (int, float)) else None
        if not err.retryable or attempt >= self.max_retries:
            raise self._exhausted(err, attempt)
        if retry_after is not None and retry_after > self.backoff.max_retry_wait_s:
            raise self._exhausted(err, attempt, note=f"server asks to wait {retry_after:.0f}s")
        wait = self.backoff.delay(attempt, retry_after)
        self._event(on_event, ModelEvent(kind="retry", model=self.name, attempt=attempt + 1, error=str(err),
                                         status=err.status, wait_s=wait))
        await self._sleep(wait)

    def _exhausted(self, err: ModelError, attempt: int, note: str = "") -> ModelError:
        if not err.retryable:
            return err
        tries = f"after {attempt + 1} attempt{'s' if attempt else ''}"
        msg = f"{err.message} ({tries}{'; ' + note if note else ''}); try again later or use --fallback"
        if isinstance(err, RateLimited):
            out: ModelError = RateLimited(msg, retry_after=err.retry_after, status=err.status, partial=err.partial)
        else:
            out = ModelError(msg, status=err.status, retryable=True, partial=err.partial)
        out.__cause__ = err
        return out

    def _transport_error(self, e: Exception, partial: Completion | None = None) -> ModelError:
        if isinstance(e, httpx.TimeoutException):
            what = {"ConnectTimeout": "connecting", "ReadTimeout": "waiting for data",
                    "WriteTimeout": "sending", "PoolTimeout": "waiting for a connection"}.get(type(e).__name__, "")
            msg = f"{self.provider} ({self.name}) timed out {what}".rstrip()
        elif isinstance(e, asyncio.TimeoutError):
            msg = f"{self.provider} ({self.name}) did not finish within {self.attempt_timeout_s}s"
        elif isinstance(e, httpx.ConnectError):
            msg = f"cannot connect to {self.base_url}: {e or type(e).__name__}"
        else:
            msg = f"connection to {self.provider} ({self.name}) broke: {type(e).__name__} {e}".rstrip()
        return ModelError(msg, retryable=True, partial=partial)

    def _raise_http(self, resp: httpx.Response, text: str) -> None:
        raise http_error(resp.status_code, resp.headers, text, model=self.name, provider=self.provider,
                         key_env=self.preset.key_env, context_window=self.context_window)

    # ------------------------------------------------------------------ complete
    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        if self.stream_complete:
            final: Completion | None = None
            async for delta in self._stream(messages, tools, settings, on_event, retry_after_output=True):
                final = delta.completion or final
            assert final is not None
            return final
        s = self.settings.merged(settings)
        body = self.build_body(messages, tools, s, stream=False)
        attempt = 0
        while True:
            try:
                return await self._complete_once(body, s, messages, tools)
            except ModelError as err:
                await self._retry_wait(err, attempt, on_event)
                attempt += 1

    async def _complete_once(self, body: dict[str, Any], s: ModelSettings, messages: list[Message],
                             tools: list[dict[str, Any]] | None) -> Completion:
        t0 = time.monotonic()
        try:
            coro = self._client().post(self.base_url + "/chat/completions", json=body,
                                       headers=self._headers(s, False), timeout=self._timeout(s))
            resp = await (asyncio.wait_for(coro, self.attempt_timeout_s) if self.attempt_timeout_s else coro)
        except (httpx.TransportError, asyncio.TimeoutError) as e:
            raise self._transport_error(e) from e
        text = resp.text
        if resp.status_code >= 400:
            self._raise_http(resp, text)
        try:
            data = json.loads(text)  # leading blank keep-alive lines are whitespace to JSON
        except ValueError:
            raise ModelError(f"{self.provider} ({self.name}) sent a malformed response body: "
                             f"{' '.join(text.split())[:120]!r}", status=resp.status_code, retryable=True) from None
        if not isinstance(data, dict):
            raise ModelError(f"{self.provider} ({self.name}) sent a non-object JSON body", retryable=True)
        choices = data.get("choices") or []
        if data.get("error") is not None and (not choices or choices[0].get("finish_reason") == "error"):
            raise stream_error(data["error"], model=self.name, provider=self.provider,
                               context_window=self.context_window)
        if not choices:
            raise ModelError(f"{self.provider} ({self.name}) returned no choices", retryable=True)
        estimate = self._estimate(messages, tools) if not data.get("usage") else None
        comp = completion_from_body(data, model=self.name, provider=self.provider,
                                    latency_s=time.monotonic() - t0, estimate=estimate)
        if estimate is not None:
            comp.usage = self._with_completion_estimate(comp)
        return comp

    def _with_completion_estimate(self, comp: Completion) -> Usage:
        usage = comp.usage
        try:
            from agentkit.tokens import count_text

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
        return self._stream(messages, tools, settings, on_event, retry_after_output=False)

    async def _stream(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                      settings: ModelSettings | None, on_event: OnEvent | None,
                      retry_after_output: bool) -> AsyncIterator[CompletionDelta]:
        s = self.settings.merged(settings)
        body = self.build_body(messages, tools, s, stream=True)
        attempt = 0
        while True:
            shown = False
            try:
                async for delta in self._stream_once(body, s, messages, tools):
                    if delta.completion is None:
                        shown = True
                        if retry_after_output:
                            continue  # complete() via stream: nothing is shown, so any failure may retry
                    yield delta
                return
            except ModelError as err:
                if shown and not retry_after_output:
                    raise
                await self._retry_wait(err, attempt, on_event)
                attempt += 1

    async def _stream_once(self, body: dict[str, Any], s: ModelSettings, messages: list[Message],
                           tools: list[dict[str, Any]] | None) -> AsyncIterator[CompletionDelta]:
        t0 = time.monotonic()
        deadline = t0 + self.attempt_timeout_s if self.attempt_timeout_s else None
        asm = StreamAssembler(model=self.name, provider=self.provider)
        done = False
        try:
            async with self._client().stream("POST", self.base_url + "/chat/completions", json=body,
                                             headers=self._headers(s, True), timeout=self._timeout(s)) as resp:
                if resp.status_code >= 400:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    self._raise_http(resp, text)
                ctype = resp.headers.get("content-type", "")
                if "json" in ctype and "event-stream" not in ctype:
                    # Some servers answer a stream request with one JSON body (e.g. an error).
                    text = (await resp.aread()).decode("utf-8", "replace")
                    yield CompletionDelta(completion=self._body_as_stream(text, t0, messages, tools))
                    return
                async for data in iter_sse_data(_until(resp.aiter_lines(), deadline)):
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise ModelError(f"{self.provider} ({self.name}) sent a malformed stream chunk: "
                                         f"{data[:80]!r}", retryable=True,
                                         partial=asm.partial(time.monotonic() - t0)) from None
                    if not isinstance(chunk, dict):
                        continue
                    delta = asm.feed(chunk)
                    if asm.error is not None:
                        raise stream_error(asm.error, model=self.name, provider=self.provider,
                                           context_window=self.context_window,
                                           partial=asm.partial(time.monotonic() - t0))
                    if delta is not None:
                        yield delta
        except (httpx.TransportError, asyncio.TimeoutError) as e:
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
    def complete_sync(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                      settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        """``complete`` for code without an event loop (runs one and closes its client)."""
        async def run() -> Completion:
            try:
                return await self.complete(messages, tools, settings, on_event=on_event)
            finally:
                await self.aclose()

        return asyncio.run(run())
