"""What every HTTP model backend shares: the client, headers, timeouts, retries, body checks.

One client per model and event loop, on aiohttp directly: an ``aiohttp.ClientSession`` with our
timeouts, the shared SSL context, proxies from ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` and no
redirects. httpx's own transport (httpcore, h11, anyio) cost several times more CPU per request,
and httpx over the ``httpx-aiohttp`` transport still about twice aiohttp's, which made hundreds
of concurrent runs on one event loop CPU-bound (issue 16; ``python -m bench concurrency``).
httpx stays for what only it does: a caller's own ``transport=`` (a mock, or plain httpx), and a
proxy aiohttp cannot speak (``socks5://``), go through an ``httpx.AsyncClient``. Both clients
answer with the same small surface (``status_code``, ``headers``, ``content``/``text``;
streams: ``aread``, ``aiter_lines``), and ``TRANSPORT_ERRORS`` catches what either raises below
the HTTP status.

Building an SSL context reads the CA bundle (about 0.1 s of CPU); doing that per client made
hundreds of concurrent runs CPU-bound, so one context is built lazily and shared. Connection
limits are high enough that many concurrent runs on one model keep their connections alive
instead of churning through the pool.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import functools
import json
import logging
import re
import select
import ssl
import urllib.request
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Self
from urllib.parse import urlsplit

import aiohttp
import httpx
import orjson
from multidict import CIMultiDict
from yarl import URL

from agentkit.errors import ModelError, RateLimited
from agentkit.messages import Message
from agentkit.models.base import (
    Completion,
    CompletionDelta,
    ModelEvent,
    ModelSettings,
    OnEvent,
    ModelBase,
)
from agentkit.models.catalog import lookup
from agentkit.models.retry import Backoff, http_error, stream_error
from agentkit.models.sse import iter_sse_data
from agentkit.redact import mask_url, redact

log = logging.getLogger("agentkit.models")

POOL = httpx.Limits(max_connections=512, max_keepalive_connections=256, keepalive_expiry=30.0)
# What a request can fail with below the HTTP status: aiohttp's errors (a malformed response head,
# a body cut short or corrupt), and httpx's on the httpx path (a corrupt compressed body included).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError, httpx.TransportError, httpx.DecodingError)


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@functools.lru_cache(maxsize=1)
def _unverified_ssl_context() -> ssl.SSLContext:  # what httpx's verify=False builds, once
    return httpx.create_ssl_context(verify=False)


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, except that a pooled connection the server has already closed (the FIN
    is in the socket, the event loop has not read it yet) is dropped instead of reused: a POST on it
    fails, and aiohttp resends only idempotent methods. httpcore makes the same check. The one
    private hook left (aiohttp has no public one for "may this pooled connection be reused")."""

    async def _get(self, *args: Any, **kwargs: Any) -> Any:  # the pool's "reuse a connection" step
        while True:
            conn = await super()._get(*args, **kwargs)
            transport = conn.transport if conn is not None else None
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is None or not _readable(sock.fileno()):
                return conn
            conn.close()  # EOF or stray bytes before a request was sent: not reusable


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``,
    lower case first, unless ``NO_PROXY`` covers its host), read once per client as httpx does."""
    proxies = urllib.request.getproxies_environment()
    if not proxies:
        return None
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass_environment(parts.hostname, proxies):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else "http://" + proxy  # as httpx reads a bare host:port


@functools.lru_cache(maxsize=64)
def _aiohttp_timeout(read_s: float | None, connect_s: float | None) -> aiohttp.ClientTimeout:
    """httpx's ``Timeout(read_s, connect=connect_s)`` in aiohttp's terms: connecting →
    ``sock_connect``, each read → ``sock_read``, waiting for a pooled connection and connecting →
    ``connect``; no total (the request deadline, ``request_timeout``, is ours). aiohttp has no write
    timeout, so a stalled upload ends at the request deadline."""
    return aiohttp.ClientTimeout(total=None, connect=read_s, sock_connect=connect_s, sock_read=read_s)


@functools.lru_cache(maxsize=64)
def _httpx_timeout(read_s: float | None, connect_s: float | None) -> httpx.Timeout:
    return httpx.Timeout(read_s, connect=connect_s)


class Reply:
    """A whole (non-streamed) response: status, headers (case-insensitive), body bytes."""

    __slots__ = ("status_code", "headers", "content", "_charset")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, charset: str | None) -> None:
        self.status_code, self.headers, self.content, self._charset = status_code, headers, content, charset

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self._charset or "utf-8", "replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", "replace")


class StreamReply:
    """A response whose body is read as it arrives (``aread`` or ``aiter_lines``)."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status_code = resp.status
        self.headers = resp.headers

    async def aread(self) -> bytes:
        return await self._resp.read()

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body's lines (UTF-8), without their ends; a line ends at CRLF, LF or CR (SSE's rule)."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        buf = ""
        async for chunk in self._resp.content.iter_any():
            buf += decoder.decode(chunk)
            end = len(buf) - 1 if buf.endswith("\r") else len(buf)  # a CR may be half of a CRLF
            pos = 0
            for m in _EOL.finditer(buf, 0, end):
                yield buf[pos:m.start()]
                pos = m.end()
            buf = buf[pos:]
        buf += decoder.decode(b"", final=True)
        lines = _EOL.split(buf)
        for line in lines if lines[-1] else lines[:-1]:
            yield line


_EOL = re.compile(r"\r\n|\r|\n")


def _basic_auth(user: str | None, password: str | None) -> str:
    """HTTP Basic credentials (UTF-8, as httpx sends them)."""
    return "Basic " + base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode("ascii")


class AiohttpClient:
    """The model's HTTP client: an ``aiohttp.ClientSession`` for one base URL (made inside the
    event loop it serves). ``proxy``: an ``http(s)://`` proxy URL, credentials included, or None."""

    def __init__(self, base_url: str, *, verify: ssl.SSLContext, proxy: str | None) -> None:
        self._session = aiohttp.ClientSession(
            connector=_Connector(limit=POOL.max_connections or 0, keepalive_timeout=POOL.keepalive_expiry,
                                 ssl=verify),
            timeout=aiohttp.ClientTimeout(total=None), trust_env=False)
        base = URL(base_url)
        self._proxy: URL | None = None
        self._proxy_headers: dict[str, str] | None = None  # for the proxy's CONNECT (https)
        self._add: dict[str, str] = {}  # headers every request gets on top of the caller's
        if proxy:
            purl = URL(proxy)
            if purl.user is not None:  # aiohttp takes proxy credentials as a header
                auth = {"Proxy-Authorization": _basic_auth(purl.user, purl.password)}
                if base.scheme == "https":
                    self._proxy_headers = auth
                else:  # a plain-HTTP request goes to the proxy itself
                    self._add.update(auth)
                purl = purl.with_user(None)
            self._proxy = purl
        # Credentials in the base URL become Basic auth (httpx's rule, over any Authorization
        # header), and leave the URL: aiohttp refuses a URL with credentials and such a header.
        self._userinfo = base.user is not None
        if self._userinfo:
            self._add["Authorization"] = _basic_auth(base.user, base.password)

    @property
    def is_closed(self) -> bool:
        return self._session.closed

    def _request(self, url: str, content: bytes, headers: Mapping[str, str],
                 timeout: tuple[float | None, float | None]) -> Any:
        if self._userinfo:
            url = str(URL(url).with_user(None))
        if self._add:
            headers = CIMultiDict(headers)
            headers.update(self._add)
        return self._session.post(url, data=content, headers=headers, timeout=_aiohttp_timeout(*timeout),
                                  allow_redirects=False, proxy=self._proxy, proxy_headers=self._proxy_headers)

    async def post(self, url: str, content: bytes, headers: Mapping[str, str],
                   timeout: tuple[float | None, float | None]) -> Reply:
        async with self._request(url, content, headers, timeout) as resp:
            body = await resp.read()
            return Reply(resp.status, resp.headers, body, resp.charset)

    @contextlib.asynccontextmanager
    async def stream(self, url: str, content: bytes, headers: Mapping[str, str],
                     timeout: tuple[float | None, float | None]) -> AsyncIterator[StreamReply]:
        async with self._request(url, content, headers, timeout) as resp:
            yield StreamReply(resp)

    async def aclose(self) -> None:
        await self._session.close()

    def abandon(self) -> None:
        """Drop a client whose event loop ended without ``aclose`` (the model served an earlier
        ``asyncio.run``). Nothing can be awaited on that loop any more; marking aiohttp's pool
        closed (which on a closed loop touches no socket) keeps its finalizer from logging
        "Unclosed client session"."""
        connector = self._session.connector
        if connector is None:
            return
        for conns in list(getattr(connector, "_conns", {}).values()):
            for proto, *_ in conns:  # their sockets, closed directly: the loop can no longer do it
                transport = getattr(proto, "transport", None)
                sock = getattr(transport, "_sock", None)
                if sock is not None:
                    sock.close()
                    transport._sock = None  # type: ignore[union-attr]
        connector._close()  # close() would hand back a waiter that nothing can await


class HttpxClient:
    """An ``httpx.AsyncClient`` with the same surface as ``AiohttpClient``: over a caller's
    ``transport=`` (no proxies from the environment then), or over httpx's own transports for a
    proxy aiohttp cannot speak."""

    def __init__(self, *, verify: ssl.SSLContext, transport: httpx.AsyncBaseTransport | None) -> None:
        self._client = httpx.AsyncClient(transport=transport, verify=verify, limits=POOL, follow_redirects=False)

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    async def post(self, url: str, content: bytes, headers: Mapping[str, str],
                   timeout: tuple[float | None, float | None]) -> httpx.Response:
        return await self._client.post(url, content=content, headers=headers, timeout=_httpx_timeout(*timeout))

    def stream(self, url: str, content: bytes, headers: Mapping[str, str],
               timeout: tuple[float | None, float | None]) -> Any:
        return self._client.stream("POST", url, content=content, headers=headers, timeout=_httpx_timeout(*timeout))

    async def aclose(self) -> None:
        await self._client.aclose()

    def abandon(self) -> None:
        """Its loop ended: httpx's pools hold nothing that logs when dropped."""


HTTPClient = AiohttpClient | HttpxClient


def _certificate_error(e: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``e`` (through its causes, and aiohttp's
    ``ClientConnectorCertificateError``), or None."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return cur
        inner = getattr(cur, "certificate_error", None)  # aiohttp.ClientConnectorCertificateError
        if isinstance(inner, ssl.SSLCertVerificationError):
            return inner
        cur = cur.__cause__ or cur.__context__
    return None


def make_client(base_url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> HTTPClient:
    """The client for one model (call it inside the event loop it will serve): aiohttp, unless the
    caller gave an httpx ``transport`` or the environment's proxy for ``base_url`` is one aiohttp
    cannot speak (SOCKS)."""
    verify = shared_ssl_context() if base_url.startswith("https://") else _unverified_ssl_context()
    if transport is not None:
        return HttpxClient(verify=verify, transport=transport)
    proxy = env_proxy(base_url)
    if proxy is not None and urlsplit(proxy).scheme not in ("http", "https"):
        return HttpxClient(verify=verify, transport=None)  # httpx mounts its own proxy transport
    return AiohttpClient(base_url, verify=verify, proxy=proxy)


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
        cert = _certificate_error(e)
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
