"""What every HTTP model backend shares: headers, timeouts, retries with backoff, body checks.

``HTTPModel`` keeps one client (``clients.make_client``: aiohttp, or httpx for a caller's own
``transport=``) per event loop, so a model object can serve ``asyncio.run`` more than once; the
deadline of a whole call, the retries and what each wait reports through ``on_event`` live here,
the wire in ``clients.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import orjson
from multidict import CIMultiDict

from agentkit.errors import ModelError, RateLimited
from agentkit.messages import Message
from agentkit.models.base import Completion, CompletionDelta, ModelBase, ModelEvent, ModelSettings, OnEvent
from agentkit.models.catalog import lookup
from agentkit.models.clients import HTTPClient, certificate_error, make_client
from agentkit.models.retry import Backoff, http_error, stream_error
from agentkit.models.sse import iter_sse_data
from agentkit.redact import mask_url, redact

log = logging.getLogger("agentkit.models")


def encode_json(body: dict[str, Any]) -> bytes:
    """The request body as httpx's ``json=`` would encode it (compact UTF-8), with orjson: the
    standard encoder took about 50 µs for a 3 kB body, every step. What orjson refuses (keys
    that are not strings, integers past 64 bits, unknown types) goes to the standard encoder,
    which converts or explains it; orjson writes NaN and infinities as ``null``."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class HTTPModel(ModelBase):
    """Plumbing for a model behind an HTTP endpoint; subclasses build bodies and read replies.

    One HTTP client (``make_client``) per event loop (so a model object can serve ``asyncio.run``
    more than once); retries with backoff that report each wait through ``on_event``.
    """

    name: str
    provider: str
    base_url: str
    key_source: str | None = None  # where the key came from, as a 401 names it (a variable, or "the api_key argument")
    context_window: int | None = None

    def _init_http(self, *, api_key: str | None, headers: dict[str, str] | None, timeout_s: float,
                   connect_timeout_s: float, max_retries: int,
                   backoff: Backoff | None, transport: httpx.AsyncBaseTransport | None,
                   sleep: Callable[[float], Awaitable[None]]) -> None:
        self._api_key = api_key
        self.extra_headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self._transport = transport
        self._sleep = sleep
        self._clients: dict[asyncio.AbstractEventLoop, HTTPClient] = {}
        info = lookup(self.name)
        self.context_window = info.context_window if info else None  # named in context-length errors

    def __repr__(self) -> str:  # never shows the key
        return (f"{type(self).__name__}(model={self.name!r}, provider={self.provider!r}, "
                f"base_url={mask_url(self.base_url)!r})")

    # ------------------------------------------------------------------ client
    def _client(self) -> HTTPClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            for old in [lp for lp in self._clients if lp.is_closed()]:
                self._clients.pop(old).abandon()
            client = make_client(self.base_url, transport=self._transport)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this event loop's connections (the model stays usable: a later call reconnects)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close the connections of every event loop, from synchronous code (a loop that already
        ended has its pool dropped; a running one closes it on its next turn)."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, client in list(self._clients.items()):
            del self._clients[loop]
            if loop.is_closed():
                client.abandon()
            elif loop is current:
                loop.create_task(client.aclose())
            elif loop.is_running():  # another thread's loop
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
            else:
                loop.run_until_complete(client.aclose())

    def _headers(self, s: ModelSettings, stream: bool) -> CIMultiDict[str]:
        """The request headers; a name given again (in any case) replaces the earlier value."""
        from agentkit import __version__

        h = CIMultiDict({"Content-Type": "application/json", "User-Agent": f"agentkit/{__version__}",
                         "Accept": "text/event-stream" if stream else "application/json"})
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        h.update(self._provider_headers(s))
        h.update(self.extra_headers)
        return h

    def _provider_headers(self, s: ModelSettings) -> dict[str, str]:
        return {}

    async def _post(self, path: str, body: dict[str, Any], s: ModelSettings) -> Any:
        """POST ``body`` as JSON and read the whole reply (``status_code``, ``headers``, ``content``, ``text``)."""
        return await self._client().post(self.base_url + path, encode_json(body), self._headers(s, False),
                                         self._timeout(s))

    def _open_stream(self, path: str, body: dict[str, Any], s: ModelSettings) -> Any:
        """POST ``body`` as JSON; an async context manager with the streamed reply (``status_code``,
        ``headers``, ``aread()``, ``aiter_lines()``)."""
        return self._client().stream(self.base_url + path, encode_json(body), self._headers(s, True),
                                     self._timeout(s))

    def _timeout(self, s: ModelSettings) -> tuple[float | None, float | None]:
        """(read, connect) seconds: a call's ``timeout_s`` or the model's, and the model's connect timeout."""
        return (s.timeout_s or self.timeout_s, self.connect_timeout_s)

    # ------------------------------------------------------------------ errors and retries
    def _http_error(self, resp: Any, text: str) -> ModelError:
        text = redact(text, [self._api_key])  # a server may echo the key back in its error body
        return http_error(resp.status_code, resp.headers, text, model=self.name, provider=self.provider,
                          key_source=self.key_source, context_window=self.context_window)

    def _read_body(self, resp: Any) -> dict[str, Any]:
        """The JSON object of a non-streamed reply, or the typed error it amounts to."""
        if resp.status_code >= 400:
            raise self._http_error(resp, resp.text)
        try:  # orjson reads the UTF-8 bytes directly, several times faster than decode + json.loads
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError:  # another charset, NaN, huge ints: the standard decoder decides
            data = self._loads_text(resp)
        if not isinstance(data, dict):
            raise ModelError(f"{self.provider} ({self.name}) sent a non-object JSON body", retryable=True)
        choices = data.get("choices") or []
        if data.get("error") is not None and (not choices or choices[0].get("finish_reason") == "error"):
            raise stream_error(data["error"], model=self.name, provider=self.provider,
                               context_window=self.context_window)
        if not choices or not isinstance(choices[0], dict):
            raise ModelError(f"{self.provider} ({self.name}) returned no choices", retryable=True)
        return data

    def _loads_text(self, resp: Any) -> Any:
        text = resp.text
        try:
            return json.loads(text)  # leading blank keep-alive lines are whitespace to JSON
        except ValueError:
            raise ModelError(f"{self.provider} ({self.name}) sent a malformed response body: "
                             f"{' '.join(text.split())[:120]!r}", status=resp.status_code, retryable=True) from None

    def _transport_error(self, e: Exception, partial: Completion | None = None) -> ModelError:
        """One of ``TRANSPORT_ERRORS`` as a retryable error, named from aiohttp's exception (or
        httpx's on the httpx path, or aiohttp's behind an httpx one)."""
        cert = certificate_error(e)
        if cert is not None:  # permanent: retrying cannot make the server's certificate trusted
            why = getattr(cert, "verify_message", None) or getattr(cert, "reason", None) or str(cert)
            msg = (f"TLS certificate of {mask_url(self.base_url)} not accepted: {why}; trust its CA with "
                   "SSL_CERT_FILE=PATH (a PEM bundle) or fix the URL")
            return ModelError(redact(msg, [self._api_key]), retryable=False, partial=partial)
        low = e.__cause__ if isinstance(e.__cause__, aiohttp.ClientError) else e
        if isinstance(low, aiohttp.ClientError):
            timeout = isinstance(low, TimeoutError)
            what = ("connecting" if isinstance(low, aiohttp.ConnectionTimeoutError) else
                    "waiting for data" if isinstance(low, aiohttp.SocketTimeoutError) else "")
            refused = isinstance(low, aiohttp.ClientConnectorError)
        else:
            timeout, refused = isinstance(e, httpx.TimeoutException), isinstance(e, httpx.ConnectError)
            what = {"ConnectTimeout": "connecting", "ReadTimeout": "waiting for data",
                    "WriteTimeout": "sending", "PoolTimeout": "waiting for a connection"}.get(type(e).__name__, "")
        if timeout:
            msg = f"{self.provider} ({self.name}) timed out {what}".rstrip()
        elif refused:
            msg = f"cannot connect to {mask_url(self.base_url)}: {e or type(e).__name__}"
        else:
            msg = f"connection to {self.provider} ({self.name}) broke: {type(low).__name__} {e}".rstrip()
        return ModelError(redact(msg, [self._api_key]), retryable=True, partial=partial)

    def _deadline_error(self, seconds: float | None) -> ModelError:
        return ModelError(f"{self.provider} ({self.name}) did not finish within {seconds:g}s (request_timeout)",
                          retryable=True)

    async def _in_time(self, call: Awaitable[Completion], seconds: float | None) -> Completion:
        """``call``, failing with a retryable error once ``seconds`` pass: the whole call, so it
        holds whichever HTTP client runs underneath."""
        timer = asyncio.timeout(seconds)
        try:
            async with timer:
                return await call
        except TimeoutError:
            if not timer.expired():
                raise
            raise self._deadline_error(seconds) from None

    async def _in_time_stream(self, deltas: AsyncIterator[CompletionDelta],
                              seconds: float | None) -> AsyncIterator[CompletionDelta]:
        """``deltas`` until ``seconds`` after the request. The clock runs from the first request on,
        but it only interrupts our own waits for the next piece: a timeout around a ``yield`` would
        cancel whatever the consumer awaits between pieces instead."""
        deadline = None if seconds is None else asyncio.get_running_loop().time() + seconds
        try:
            while True:
                timer = asyncio.timeout_at(deadline)
                try:
                    async with timer:
                        delta = await anext(deltas)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    if not timer.expired():
                        raise
                    raise self._deadline_error(seconds) from None
                yield delta
        finally:
            await deltas.aclose()  # type: ignore[attr-defined]

    def _event(self, on_event: OnEvent | None, event: ModelEvent) -> None:
        log.info("model %s: %s (attempt %d%s) %s", self.name, event.kind, event.attempt,
                 f", waiting {event.wait_s:.1f}s" if event.wait_s else "", event.error)
        if on_event is not None:
            on_event(event)

    async def _retry_wait(self, err: ModelError, attempt: int, on_event: OnEvent | None,
                          discarded: bool = False) -> None:
        """Sleep before the next attempt, or raise when retrying is pointless or used up.
        ``discarded``: the failed attempt had streamed output, which the event tells observers to drop."""
        retry_after = getattr(err, "retry_after", None)
        if retry_after is None and isinstance(err.details.get("retry_after"), (int, float)):
            retry_after = float(err.details["retry_after"])  # type: ignore[arg-type]
        if not err.retryable or attempt >= self.max_retries:
            raise self._exhausted(err, attempt)
        if retry_after is not None and retry_after > self.backoff.max_retry_wait_s:
            raise self._exhausted(err, attempt, note=f"server asks to wait {retry_after:.0f}s")
        wait = self.backoff.delay(attempt, retry_after)
        self._event(on_event, ModelEvent(kind="retry", model=self.name, attempt=attempt + 1, error=str(err),
                                         status=err.status, wait_s=wait, discarded=discarded))
        await self._sleep(wait)

    async def _retrying(self, attempt_once: Callable[[], Awaitable[Completion]], on_event: OnEvent | None,
                        deadline_s: float | None) -> Completion:
        """Run one request attempt after another until one succeeds or retrying must stop; each
        attempt has ``deadline_s`` seconds."""
        attempt = 0
        while True:
            try:
                return await self._in_time(attempt_once(), deadline_s)
            except ModelError as err:
                await self._retry_wait(err, attempt, on_event)
                attempt += 1

    async def _retrying_stream(self, attempt_once: Callable[[], AsyncIterator[CompletionDelta]],
                               on_event: OnEvent | None, deadline_s: float | None, *,
                               hold_output: bool = False) -> AsyncIterator[CompletionDelta]:
        """Stream attempt after attempt, each within ``deadline_s``. A failure after output was passed
        on is retried too: the retry event says ``discarded`` so the caller drops what it showed, and
        the next attempt starts the reply over. With ``hold_output`` only the final completion is
        passed on (nothing to discard)."""
        attempt = 0
        while True:
            shown = False
            try:
                async for delta in self._in_time_stream(attempt_once(), deadline_s):
                    if delta.completion is None:
                        if hold_output:
                            continue
                        shown = True
                    yield delta
                return
            except ModelError as err:
                await self._retry_wait(err, attempt, on_event, discarded=shown)
                attempt += 1

    async def _sse_json(self, lines: AsyncIterator[str],
                        partial: Callable[[], Completion | None]) -> AsyncIterator[dict[str, Any] | None]:
        """The JSON object chunks of an SSE stream, then ``None`` if ``[DONE]`` arrives. A chunk that
        is not JSON is a retryable error that keeps the output so far."""
        async for data in iter_sse_data(lines):
            if data.strip() == "[DONE]":
                yield None
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                raise ModelError(f"{self.provider} ({self.name}) sent a malformed stream chunk: {data[:80]!r}",
                                 retryable=True, partial=partial()) from None
            if isinstance(chunk, dict):
                yield chunk

    def _exhausted(self, err: ModelError, attempt: int, note: str = "") -> ModelError:
        if not err.retryable:
            return err
        tries = f"after {attempt + 1} attempt{'s' if attempt else ''}"
        msg = f"{err.message} ({tries}{'; ' + note if note else ''}); try again later or set fallbacks=[...]"
        if isinstance(err, RateLimited):
            out: ModelError = RateLimited(msg, retry_after=err.retry_after, status=err.status, partial=err.partial)
        else:
            out = ModelError(msg, status=err.status, retryable=True, partial=err.partial)
        out.__cause__ = err
        return out

    # ------------------------------------------------------------------ sync facade
    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        raise NotImplementedError

    def complete_sync(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                      settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        """``complete`` for code without an event loop (runs one and closes its client)."""
        async def run() -> Completion:
            try:
                return await self.complete(messages, tools, settings, on_event=on_event)
            finally:
                await self.aclose()

        return asyncio.run(run())
