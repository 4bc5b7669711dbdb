"""The HTTP clients behind every model: one per model and event loop, with one small surface.

aiohttp directly: an ``aiohttp.ClientSession`` with our timeouts, the shared SSL context, proxies
from ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` and no redirects. httpx's own transport
(httpcore, h11, anyio) cost several times more CPU per request, and httpx over the
``httpx-aiohttp`` transport still about twice aiohttp's, which made hundreds of concurrent runs on
one event loop CPU-bound (issue 16; ``python -m bench concurrency``). httpx stays for what only it
does: a caller's own ``transport=`` (a mock, or plain httpx), and a proxy aiohttp cannot speak
(``socks5://``), go through an ``httpx.AsyncClient``. Both answer with the same small surface
(``status_code``, ``headers``, ``content``/``text``; streams: ``aread``, ``aiter_lines``), and
``TRANSPORT_ERRORS`` catches what either raises below the HTTP status.

Building an SSL context reads the CA bundle (about 0.1 s of CPU); doing that per client made
hundreds of concurrent runs CPU-bound, so one context is built lazily and shared. Connection
limits are high enough that many concurrent runs on one model keep their connections alive
instead of churning through the pool.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import functools
import re
import select
import ssl
import urllib.request
from typing import Any, AsyncIterator, Mapping
from urllib.parse import urlsplit

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

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


def certificate_error(e: BaseException) -> ssl.SSLCertVerificationError | None:
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
