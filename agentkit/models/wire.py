"""A lean HTTP/1.1 keep-alive client for plain-``http://`` model endpoints.

Why: a self-hosted vLLM/SGLang server on the local network is where hundreds of agent runs
share one event loop, and there httpx's layers (client, httpcore pool, h11, anyio) cost about
a millisecond of CPU per request: more than everything else an agent step does. This client
speaks just enough HTTP/1.1 for an OpenAI-compatible API (content-length, chunked and
read-to-close bodies, gzip/deflate if a server compresses anyway, keep-alive pooling) straight
on an ``asyncio.Protocol``, at about a tenth of that cost.

It mirrors the slice of httpx's API the models use (``post``, ``stream``, ``aclose``;
responses with ``status_code``, ``headers``, ``text``, ``aread``, ``aiter_lines``) and raises
httpx's own exception types, so retries and error messages do not care which client ran.
TLS endpoints and proxies stay with httpx (HTTP/2, the CA bundle, proxy auth).
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import functools
import os
import re
import select
import sys
import time
import zlib
from typing import Any, AsyncIterator
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx

MAX_HEAD_BYTES = 64 * 1024
HIGH_WATER = 4 * 1024 * 1024  # pause the socket when this much unread body is buffered
KEEPALIVE_S = 30.0
MAX_IDLE = 256
_LINE_END = re.compile(r"\r\n|\r|\n")


# Where getproxies() reads only the environment (elsewhere it also asks the system settings).
_NO_SYSTEM_PROXIES = sys.platform not in ("darwin", "win32")


def usable_for(url: str) -> bool:
    """Whether ``url`` can go over this client: plain http and no proxy configured for it."""
    if not url.startswith("http://"):
        return False
    if _NO_SYSTEM_PROXIES and not any(k[-6:].lower() == "_proxy" for k in os.environ):
        return True  # no proxy variable at all: skip getproxies(), which decodes the whole environment
    proxies = getproxies()
    if not (proxies.get("http") or proxies.get("all")):
        return True
    host = urlsplit(url).hostname or ""
    return bool(proxy_bypass(host))


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[str, int, str, bytes]:
    """(host, port, Host header, request target) of a URL, validated once."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"the lean HTTP client only speaks http://, not {url!r}")
    port = parts.port or 80
    host_header = parts.netloc.rpartition("@")[2]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, host_header, path.encode("ascii", "strict")


@functools.lru_cache(maxsize=1024)
def _request_head(method: str, url: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    """The request line and headers up to Content-Length (the same every step of a run)."""
    _, _, host_header, path = _target(url)
    head = [method.encode("ascii"), b" ", path, b" HTTP/1.1\r\nHost: ", host_header.encode("idna"), b"\r\n"]
    for name, value in headers:
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise httpx.LocalProtocolError(f"header {name!r} contains a line break")
        try:
            head += [name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
        except UnicodeEncodeError:
            raise httpx.LocalProtocolError(f"header {name!r} has characters HTTP cannot carry") from None
    head.append(b"Accept-Encoding: identity\r\n")
    return b"".join(head)


class Headers(dict):  # type: ignore[type-arg]
    """Response headers: names lower-cased; lookups ignore case (as httpx.Headers)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class _Connection(asyncio.Protocol):
    """One socket: bytes arrive into ``buf``; a reader waits on ``wait`` with a read timeout."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.closed = False  # the peer closed or the socket broke: no more bytes will come
        self.error: BaseException | None = None
        self.paused = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._poller: Any = None

    # -- protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > HIGH_WATER and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed, self.error = True, exc
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- used by the client
    def usable_after_response(self) -> bool:
        return not self.closed and not self.buf

    def usable(self) -> bool:
        return (not self.closed and not self.buf and self.transport is not None
                and not self.transport.is_closing() and time.monotonic() - self.idle_since < KEEPALIVE_S
                and not self._readable())

    def _readable(self) -> bool:
        """Whether the idle socket has bytes or an EOF the event loop has not handed over yet (the
        server closed it just now): such a connection must not take a request (httpcore checks the same)."""
        try:
            if self._poller is None:
                sock = self.transport.get_extra_info("socket") if self.transport is not None else None
                if sock is None:
                    return False
                if not hasattr(select, "poll"):
                    return bool(select.select([sock.fileno()], [], [], 0)[0])
                self._poller = select.poll()  # made once per connection: one system call per reuse
                self._poller.register(sock.fileno(), select.POLLIN)
            return bool(self._poller.poll(0))
        except (OSError, ValueError):
            return True

    def consumed(self) -> None:
        """The reader took bytes out of ``buf``: resume a paused socket."""
        if self.paused and len(self.buf) < HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    async def wait(self, timeout: float | None) -> None:
        """Until more bytes arrive or the peer closes; ``httpx.ReadTimeout`` after ``timeout``."""
        if self.closed:
            return
        fut = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, fut) if timeout is not None else None
        try:
            await fut
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(httpx.ReadTimeout("timed out waiting for the server's response"))


class _Body:
    """Decodes the body framing (content-length, chunked, until-close) of one response."""

    def __init__(self, conn: _Connection, headers: Headers, status: int, read_timeout: float | None,
                 http10: bool = False) -> None:
        self.conn, self.read_timeout = conn, read_timeout
        te = headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        length = headers.get("content-length")
        if status in (204, 304) or 100 <= status < 200:
            self.left: int | None = 0
        elif self.chunked:
            self.left = None
        elif length is not None:
            try:
                self.left = int(length.split(",")[0].strip())
                if self.left < 0:
                    raise ValueError
            except ValueError:
                raise httpx.RemoteProtocolError(f"malformed Content-Length header: {length!r}") from None
        else:
            self.left = -1  # until the server closes
        self.done = self.left == 0
        self.chunk_left = 0  # bytes left in the current chunk
        connection = headers.get("connection", "").lower()
        # HTTP/1.0 closes after the response unless the server says keep-alive
        self.keep_alive = "close" not in connection and self.left != -1 and (not http10 or "keep-alive" in connection)
        enc = headers.get("content-encoding", "").lower().strip()
        self.inflate = _Inflater(enc) if enc in ("gzip", "x-gzip", "deflate") else None

    async def next(self) -> bytes:
        """The next decoded bytes of the body; ``b""`` once it is complete."""
        while not self.done:
            raw = self._take()
            if raw is None:
                if self.conn.closed:
                    if self.left == -1:
                        self.done = True
                        break
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body") from self.conn.error
                await self.conn.wait(self.read_timeout)
                continue
            self.conn.consumed()
            if raw:
                return self.inflate.decompress(raw) if self.inflate is not None else raw
        if self.inflate is not None:
            tail, self.inflate = self.inflate.flush(), None
            return tail
        return b""

    def _take(self) -> bytes | None:
        """Body bytes available now (may be ``b""`` when only framing was consumed), or None."""
        buf = self.conn.buf
        if self.left == -1:
            if not buf:
                return None
            out = bytes(buf)
            buf.clear()
            return out
        if not self.chunked:
            assert self.left is not None
            if not buf:
                return None
            n = min(self.left, len(buf))
            out = bytes(buf[:n])
            del buf[:n]
            self.left -= n
            self.done = self.left == 0
            return out
        if self.chunk_left == 0:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > 4096:
                    raise httpx.RemoteProtocolError("malformed chunked encoding: chunk size line too long")
                return None
            line = bytes(buf[:nl]).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise httpx.RemoteProtocolError(f"malformed chunked encoding: {line[:40]!r}") from None
            if size == 0:  # the last chunk: trailers (usually none) up to a blank line
                end = _blank_line(buf, nl + 1)
                if end < 0:
                    return None
                del buf[:end]
                self.done = True
                return b""
            del buf[:nl + 1]
            self.chunk_left = size + 2  # the data, then its CRLF
        n = min(self.chunk_left, len(buf))
        if n == 0:
            return None
        data = min(n, self.chunk_left - 2)  # the CRLF after the data is framing, not body
        out = bytes(buf[:data]) if data > 0 else b""
        del buf[:n]
        self.chunk_left -= n
        return out


def _blank_line(buf: bytearray, start: int) -> int:
    """End of the blank line that closes a chunked body's trailer section, or -1 if not here yet."""
    if buf.startswith(b"\r\n", start):
        return start + 2
    if buf.startswith(b"\n", start):
        return start + 1
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = buf.find(sep, start)
        if i >= 0:
            return i + len(sep)
    return -1


class _Inflater:
    """gzip or deflate bodies; "deflate" may come with or without its zlib header (servers differ)."""

    def __init__(self, encoding: str) -> None:
        self.raw_fallback = encoding == "deflate"
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS)
        self.started = False

    def decompress(self, data: bytes) -> bytes:
        try:
            out = self.z.decompress(data)
        except zlib.error as e:
            if self.raw_fallback and not self.started:
                self.raw_fallback, self.z = False, zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decompress(data)
            raise httpx.RemoteProtocolError(f"the server's compressed body is corrupt: {e}") from None
        self.started = True
        return out

    def flush(self) -> bytes:
        try:
            return self.z.flush()
        except zlib.error as e:
            raise httpx.RemoteProtocolError(f"the server's compressed body is corrupt: {e}") from None


class WireResponse:
    """A response whose head has arrived; the body is read on demand (as httpx.Response)."""

    def __init__(self, status_code: int, headers: Headers, body: _Body, release: Any) -> None:
        self.status_code = status_code
        self.headers = headers
        self._body = body
        self._release = release
        self._content: bytes | None = None

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise httpx.ResponseNotRead()
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode(self._charset(), "replace")

    def json(self) -> Any:
        import json

        return json.loads(self.content)

    def _charset(self) -> str:
        ctype = self.headers.get("content-type", "")
        for part in ctype.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                try:
                    return codecs.lookup(value.strip('"')).name
                except LookupError:
                    break
        return "utf-8"

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        if self._content is not None:
            if self._content:
                yield self._content
            return
        while True:
            piece = await self._body.next()
            if not piece:
                if self._body.done:
                    self._release(self._body.keep_alive)
                    return
                continue
            yield piece

    async def aread(self) -> bytes:
        if self._content is None:
            self._content = b"".join([p async for p in self.aiter_bytes()])
        return self._content

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Text lines without their endings; ``\\n``, ``\\r\\n`` and ``\\r`` all end a line."""
        decoder = codecs.getincrementaldecoder(self._charset())("replace")
        pending = ""
        async for piece in self.aiter_bytes():
            text = pending + decoder.decode(piece)
            if text.endswith("\r"):  # may be the first half of \r\n
                text, pending = text[:-1], "\r"
            else:
                pending = ""
            # not str.splitlines: it also splits on \x0b, \x1c, \x85, \u2028 ... (raw in JSON text), and
            # whether such a split happened depended on where the reads fell
            lines = _LINE_END.split(text)
            pending = lines.pop() + pending  # the unfinished last line ("" after a line ending)
            for line in lines:
                yield line
        rest = (pending + decoder.decode(b"", final=True)).rstrip("\r")
        if rest:
            yield rest


class _Slots:
    """A counting semaphore for connections; ``asyncio.Semaphore`` costs several microseconds
    per acquire even when uncontended (it scans its waiters), and this runs every request."""

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, timeout: float | None) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except BaseException as e:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a slot while giving up: pass it on
            else:
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self.waiters.remove(fut)
            if isinstance(e, asyncio.TimeoutError):
                raise httpx.PoolTimeout("timed out waiting for a free connection") from None
            raise

    def release(self) -> None:
        while self.waiters:
            w = self.waiters.popleft()
            if not w.done():
                w.set_result(None)  # the slot passes straight to this waiter
                return
        self.free += 1


class WireClient:
    """A connection pool and request methods with httpx's shape (see the module docstring)."""

    def __init__(self, *, timeout: httpx.Timeout, max_connections: int = 512) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._slots = _Slots(max_connections)
        self._open: set[_Connection] = set()
        self.is_closed = False

    # -- httpx-shaped API
    async def post(self, url: str, *, content: bytes, headers: dict[str, str],
                   timeout: httpx.Timeout | None = None) -> WireResponse:
        resp = await self._send("POST", url, content, headers, timeout or self.timeout)
        try:
            await resp.aread()
        finally:
            resp._release(False)  # no-op when the body was read to its end and released
        return resp

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, *, content: bytes, headers: dict[str, str],
                     timeout: httpx.Timeout | None = None) -> AsyncIterator[WireResponse]:
        resp = await self._send(method, url, content, headers, timeout or self.timeout)
        try:
            yield resp
        finally:
            resp._release(False)  # no-op when the body was read to its end and released

    async def aclose(self) -> None:
        self.is_closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()

    # -- internals
    async def _send(self, method: str, url: str, content: bytes, headers: dict[str, str],
                    timeout: httpx.Timeout) -> WireResponse:
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        host, port, _, _ = _target(url)
        request = b"".join((_request_head(method, url, tuple(headers.items())),
                            b"Content-Length: %d\r\n\r\n" % len(content), content))
        conn = await self._acquire(host, port, timeout)
        released = False

        def release(keep: bool) -> None:
            nonlocal released
            if released:
                return
            released = True
            self._slots.release()
            if keep and not self.is_closed and conn.usable_after_response():
                conn.idle_since = time.monotonic()
                idle = self._idle.setdefault((host, port), [])
                if len(idle) < MAX_IDLE:
                    idle.append(conn)
                    return
            self._open.discard(conn)
            conn.close()

        try:
            assert conn.transport is not None
            conn.transport.write(request)
            status, resp_headers, http10 = await _read_head(conn, timeout.read)
            body = _Body(conn, resp_headers, status, timeout.read, http10)
            resp = WireResponse(status, resp_headers, body, release)
            if body.done:
                resp._content = b""
                release(body.keep_alive)
            return resp
        except BaseException:
            release(False)
            raise

    async def _acquire(self, host: str, port: int, timeout: httpx.Timeout) -> _Connection:
        await self._slots.acquire(timeout.pool)
        idle = self._idle.get((host, port))
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
            self._open.discard(conn)
            conn.close()
        loop = asyncio.get_running_loop()
        try:  # asyncio.timeout, not wait_for: wait_for wraps the connect in a task of its own
            async with asyncio.timeout(timeout.connect):
                _, conn = await loop.create_connection(lambda: _Connection(loop), host, port)
        except asyncio.TimeoutError:
            self._slots.release()
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as e:
            self._slots.release()
            raise httpx.ConnectError(str(e) or type(e).__name__) from e
        except BaseException:
            self._slots.release()
            raise
        self._open.add(conn)
        return conn


async def _read_head(conn: _Connection, read_timeout: float | None) -> tuple[int, Headers, bool]:
    """Status, headers and whether it is HTTP/1.0, of the next final response (1xx are skipped)."""
    while True:
        buf = conn.buf
        end = buf.find(b"\r\n\r\n")
        sep = 4
        if end < 0:
            end, sep = buf.find(b"\n\n"), 2
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("the server's response headers are too large")
            if conn.closed:
                if conn.error is not None and not buf:
                    raise httpx.ReadError(f"{type(conn.error).__name__}: {conn.error}") from conn.error
                raise httpx.RemoteProtocolError("Server disconnected without sending a response."
                                                if not buf else "server closed the connection mid-header")
            await conn.wait(read_timeout)
            continue
        head = bytes(buf[:end]).decode("latin-1")
        del buf[:end + sep]
        lines = head.splitlines()
        parts = lines[0].split(" ", 2) if lines else []
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise httpx.RemoteProtocolError(f"malformed status line: {lines[0][:80] if lines else ''!r}")
        status = int(parts[1])
        headers = Headers()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if 100 <= status < 200 and status != 101:
            continue
        return status, headers, parts[0] == "HTTP/1.0"
