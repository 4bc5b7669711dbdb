"""The lean HTTP/1.1 client (``agentkit.models.wire``) against real sockets.

Every test starts a raw asyncio TCP server on 127.0.0.1 that writes exact bytes (often a few at a
time, with pauses, so framing lands across reads) and counts the connections it accepts; the
client under test is never mocked.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx
import pytest

from agentkit.messages import SystemMessage, UserMessage
from agentkit.models import OpenAICompatible
from agentkit.models.wire import WireClient, usable_for
from agentkit.testing.server import Reply

# --------------------------------------------------------------------------- a raw test server


@dataclass
class Request:
    raw_head: bytes
    request_line: str
    header_lines: list[str]
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Peer:
    """The server's side of one accepted connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        self.reader, self.writer, self.index = reader, writer, index

    async def read_request(self) -> Request | None:
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head[:-4].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return Request(head, lines[0], lines[1:], headers, body)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def drip(self, data: bytes, size: int = 1, delay: float = 0.0005) -> None:
        """``data`` in writes of ``size`` bytes with a pause after each (separate reads on the client)."""
        for i in range(0, len(data), size):
            await self.send(data[i:i + size])
            await asyncio.sleep(delay)

    async def send_pieces(self, pieces: list[bytes], delay: float = 0.003) -> None:
        for piece in pieces:
            await self.send(piece)
            await asyncio.sleep(delay)

    def close(self) -> None:
        self.writer.close()


# An action answers one request; it returns whether to keep serving that connection.
Action = Callable[[Peer, Request], Awaitable[bool]]


@dataclass
class RawServer:
    actions: list[Action]
    default: Action | None = None
    accepted: int = 0
    requests: list[Request] = field(default_factory=list)
    client_closed: int = 0  # connections the client closed (the server read EOF)
    port: int = 0
    _server: asyncio.AbstractServer | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> "RawServer":
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        peer = Peer(reader, writer, self.accepted)
        try:
            while True:
                req = await peer.read_request()
                if req is None:
                    self.client_closed += 1
                    break
                self.requests.append(req)
                action = self.actions.pop(0) if self.actions else self.default
                assert action is not None, "the server got more requests than the test scripted"
                if not await action(peer, req):
                    break
        except (ConnectionError, asyncio.CancelledError):  # a cancelled handler ends quietly at teardown
            pass
        finally:
            writer.close()
            self._changed.set()
            self._tasks.discard(task)

    async def wait_for(self, cond: Callable[[], bool], timeout: float = 1.0) -> None:
        """Until ``cond()`` holds (checked whenever a connection handler ends)."""
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            assert left > 0, "the server never reached the expected state"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.02))
            except asyncio.TimeoutError:
                pass

    async def aclose(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def make(*actions: Action, default: Action | None = None) -> RawServer:
        srv = await RawServer(list(actions), default).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        await srv.aclose()


@pytest.fixture
async def wire() -> AsyncIterator[Callable[..., WireClient]]:
    clients: list[WireClient] = []

    def make(max_connections: int = 8, timeout: httpx.Timeout | None = None) -> WireClient:
        c = WireClient(timeout=timeout or httpx.Timeout(2.0), max_connections=max_connections)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


# --------------------------------------------------------------------------- response bytes and actions


def response(body: bytes = b"ok", *headers: str, status: str = "200 OK", length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def reply(data: bytes, keep: bool = True) -> Action:
    async def act(peer: Peer, req: Request) -> bool:
        await peer.send(data)
        return keep
    return act


def after(gate: asyncio.Event, data: bytes) -> Action:
    """A server action that answers ``data`` once ``gate`` is set (keeps its connection busy)."""
    async def act(peer: Peer, req: Request) -> bool:
        await gate.wait()
        await peer.send(data)
        return True

    return act


def drip(data: bytes, size: int = 1, keep: bool = True) -> Action:
    async def act(peer: Peer, req: Request) -> bool:
        await peer.drip(data, size)
        return keep
    return act


def pieces(*parts: bytes, keep: bool = True, delay: float = 0.003) -> Action:
    async def act(peer: Peer, req: Request) -> bool:
        await peer.send_pieces(list(parts), delay)
        return keep
    return act


def echo_ok() -> Action:
    async def act(peer: Peer, req: Request) -> bool:
        await peer.send(response(b"ok:" + req.request_line.split(" ")[1].encode()))
        return True
    return act


async def post(c: WireClient, url: str, body: bytes = b"{}", headers: dict[str, str] | None = None,
               **kw: Any) -> Any:
    return await c.post(url, content=body, headers=headers or {}, **kw)


def free_port() -> int:
    """A port nothing listens on (bound, never listened, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- bodies and framing


async def test_content_length_body_status_headers_and_json(serve, wire):
    payload = {"id": "x", "choices": [{"text": "héllo ✓"}]}
    body = json.dumps(payload, ensure_ascii=False).encode()
    srv = await serve(reply(response(body, "Content-Type: application/json; charset=utf-8", "X-Twice: 1",
                                     "x-twice: 2", status="201 Created")))
    r = await post(wire(), srv.url())
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["CONTENT-TYPE"] == r.headers.get("Content-Type") == "application/json; charset=utf-8"
    assert "Content-Length" in r.headers and r.headers.get("missing", "dflt") == "dflt"
    assert r.headers["x-twice"] == "1, 2"  # repeated headers are joined, as httpx does
    assert r.content == body and r.json() == payload and r.text == body.decode()


async def test_text_uses_the_declared_charset(serve, wire):
    srv = await serve(reply(response("déjà".encode("latin-1"), "Content-Type: text/plain; charset=ISO-8859-1")))
    r = await post(wire(), srv.url())
    assert r.text == "déjà"


async def test_head_and_body_arrive_one_byte_at_a_time(serve, wire):
    body = b'{"answer": 42, "text": "split everywhere"}'
    srv = await serve(drip(response(body, "Content-Type: application/json")), drip(response(b"again")))
    c = wire(max_connections=1)
    r = await post(c, srv.url())
    assert r.status_code == 200 and r.content == body and r.json()["answer"] == 42
    r2 = await post(c, srv.url())  # the framing left nothing behind: the connection is reused
    assert r2.content == b"again" and srv.accepted == 1


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
async def test_statuses_without_a_body_do_not_wait_for_one(serve, wire, status):
    srv = await serve(reply(response(b"", status=status, length=False)), reply(response(b"next")))
    c = wire(max_connections=1)
    r = await post(c, srv.url())
    assert r.status_code == int(status[:3]) and r.content == b""
    assert (await post(c, srv.url())).content == b"next" and srv.accepted == 1


async def test_chunked_body_with_extensions_and_trailers(serve, wire):
    body = (CHUNKED_HEAD + b"5;name=value\r\nhello\r\n" + b"1 ; ext\r\n \r\n" + b"A\r\n0123456789\r\n"
            + b"0;last=1\r\nX-Checksum: abc\r\nX-Other: def\r\n\r\n")
    srv = await serve(reply(body), reply(response(b"second")))
    c = wire(max_connections=1)
    r = await post(c, srv.url())
    assert r.content == b"hello 0123456789"
    r2 = await post(c, srv.url())  # the trailers were consumed exactly: the next response parses
    assert r2.content == b"second" and srv.accepted == 1


async def test_chunked_body_split_across_writes_everywhere(serve, wire):
    data = chunked(b"first", b"\r\n in data \r\n", b"x" * 20, trailer=b"X-T: 1\r\n")
    srv = await serve(drip(CHUNKED_HEAD + data), drip(CHUNKED_HEAD + data, size=3), reply(response(b"third")))
    c = wire(max_connections=1)
    expected = b"first\r\n in data \r\n" + b"x" * 20
    assert (await post(c, srv.url())).content == expected
    assert (await post(c, srv.url())).content == expected
    assert (await post(c, srv.url())).content == b"third" and srv.accepted == 1


async def test_chunk_boundary_between_the_data_and_its_crlf(serve, wire):
    srv = await serve(
        pieces(CHUNKED_HEAD + b"5\r\nhello", b"\r\n6\r\n world", b"\r", b"\n", b"3\r\n!!!\r", b"\n0\r\n", b"\r\n"),
        pieces(CHUNKED_HEAD + b"4\r", b"\nab", b"cd\r\n0", b"\r\n\r", b"\n"),
        reply(response(b"after")))
    c = wire(max_connections=1)
    async with c.stream("POST", srv.url(), content=b"", headers={}) as r:
        got = [p async for p in r.aiter_bytes()]
    assert b"".join(got) == b"hello world!!!" and b"" not in got  # framing never shows up as empty pieces
    assert (await post(c, srv.url())).content == b"abcd"
    assert (await post(c, srv.url())).content == b"after" and srv.accepted == 1


async def test_read_until_close_body_and_that_connection_is_not_reused(serve, wire):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
    srv = await serve(pieces(head + b"part one, ", b"part two, ", b"end", keep=False),
                      pieces(head, b"streamed ", b"until close", keep=False),
                      reply(response(b"fresh")))
    c = wire(max_connections=1)
    r = await post(c, srv.url())
    assert r.content == b"part one, part two, end"
    async with c.stream("POST", srv.url(), content=b"", headers={}) as r2:
        assert b"".join([p async for p in r2.aiter_bytes()]) == b"streamed until close"
    r3 = await post(c, srv.url())
    assert r3.content == b"fresh" and srv.accepted == 3


# --------------------------------------------------------------------------- keep-alive


async def test_sequential_requests_reuse_one_connection(serve, wire):
    srv = await serve(default=echo_ok())
    c = wire(max_connections=4)
    for i in range(5):
        r = await post(c, srv.url(f"/r{i}"))
        assert r.content == f"ok:/r{i}".encode()
    async with c.stream("POST", srv.url("/s"), content=b"", headers={}) as r:
        assert await r.aread() == b"ok:/s"
    assert srv.accepted == 1 and len(srv.requests) == 6


async def test_connection_close_from_the_server_means_a_new_connection(serve, wire):
    srv = await serve(reply(response(b"one", "Connection: close"), keep=False),
                      reply(response(b"two", "connection: Close"), keep=True),  # the client must not reuse it
                      reply(response(b"three")), reply(response(b"four")))
    c = wire(max_connections=1)
    assert [(await post(c, srv.url())).content for _ in range(4)] == [b"one", b"two", b"three", b"four"]
    assert srv.accepted == 3


@pytest.mark.parametrize("settle", [True, False])
async def test_server_closing_an_idle_connection_leads_to_a_new_one(serve, wire, settle):
    srv = await serve(reply(response(b"one"), keep=False), reply(response(b"two")), reply(response(b"three")))
    c = wire(max_connections=1)
    assert (await post(c, srv.url())).content == b"one"
    if settle:
        await srv.wait_for(lambda: srv.accepted == 1 and not srv._tasks)  # the server closed its side
        await asyncio.sleep(0.02)  # and the client's loop saw the EOF
    # else: the next request goes out at once, before the loop has handed the EOF to the
    # connection (the FIN is already in the socket: the pool must notice it there)
    assert (await post(c, srv.url())).content == b"two"
    assert (await post(c, srv.url())).content == b"three"
    assert srv.accepted == 2


def reply_then_close_later(data: bytes, delay: float = 0.03) -> Action:
    async def act(peer: Peer, req: Request) -> bool:
        await peer.send(data)
        await asyncio.sleep(delay)  # the close comes after the client has moved on
        return False
    return act


async def test_http10_response_without_keep_alive_is_not_reused(serve, wire):
    # An HTTP/1.0 server closes after each response unless it said keep-alive (here a moment
    # later, so nothing on the socket tells yet): the next request must not go onto that connection.
    srv = await serve(reply_then_close_later(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\none"),
                      reply(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\ntwo", keep=False),
                      reply(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nthree"),
                      reply(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nfour", keep=False))
    c = wire(max_connections=1)
    got = [(await post(c, srv.url())).content for _ in range(4)]
    assert got == [b"one", b"two", b"three", b"four"]
    assert srv.accepted == 3  # the keep-alive one was reused


async def test_interim_1xx_responses_are_skipped(serve, wire):
    srv = await serve(reply(b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"final", "X-Final: yes")),
                      pieces(b"HTTP/1.1 100 Continue\r\n\r", b"\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                             response(b"second")),
                      reply(response(b"third")))
    c = wire(max_connections=1)
    r = await post(c, srv.url())
    assert r.status_code == 200 and r.content == b"final" and r.headers["x-final"] == "yes"
    r2 = await post(c, srv.url())
    assert r2.status_code == 200 and r2.content == b"second" and "link" not in r2.headers
    assert (await post(c, srv.url())).content == b"third" and srv.accepted == 1


# --------------------------------------------------------------------------- content encodings

TEXT = ("Compressible text, over and over. " * 400).encode()


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data)  # HTTP's "deflate" is the zlib format


@pytest.mark.parametrize("encoding,compress", [("gzip", gzip.compress), ("x-gzip", gzip.compress),
                                               ("deflate", _deflate), ("GZip", gzip.compress)])
async def test_compressed_bodies_are_decoded(serve, wire, encoding, compress):
    packed = compress(TEXT)
    srv = await serve(drip(response(packed, f"Content-Encoding: {encoding}"), size=7),
                      drip(CHUNKED_HEAD.replace(b"\r\n\r\n", f"\r\nContent-Encoding: {encoding}\r\n\r\n".encode())
                           + chunked(packed[:10], packed[10:13], packed[13:]), size=5),
                      reply(response(b"plain")))
    c = wire(max_connections=1)
    r = await post(c, srv.url())
    assert r.content == TEXT
    async with c.stream("POST", srv.url(), content=b"", headers={}) as r2:
        assert b"".join([p async for p in r2.aiter_bytes()]) == TEXT
    r3 = await post(c, srv.url())  # the decoder does not leak into the next response
    assert r3.content == b"plain" and srv.accepted == 1


# --------------------------------------------------------------------------- lines and streaming


async def lines_of(c: WireClient, srv: RawServer) -> list[str]:
    async with c.stream("POST", srv.url(), content=b"", headers={}) as r:
        return [line async for line in r.aiter_lines()]


@pytest.mark.parametrize("parts,expected", [
    ([b"a\nb\n"], ["a", "b"]),
    ([b"a\r\nb\r\n"], ["a", "b"]),
    ([b"a\rb\r"], ["a", "b"]),
    ([b"a\r", b"\nb\r\n"], ["a", "b"]),  # \r\n split across writes is one line ending
    ([b"a\r", b"\n", b"\r", b"\n", b"b"], ["a", "", "b"]),
    ([b"x\n\r", b"\ny\n"], ["x", "", "y"]),
    ([b"data: 1\r\n\r\ndata: 2\r\n\r\n"], ["data: 1", "", "data: 2", ""]),
    ([b"no newline at all"], ["no newline at all"]),
    ([b"first\nlast without", b" newline"], ["first", "last without newline"]),
    ([b"mixed\r\nends\nhere\rdone"], ["mixed", "ends", "here", "done"]),
    (["h\u00e9".encode()[:2], "h\u00e9\n".encode()[2:]], ["h\u00e9"]),
    (["\u20ac\U0001F600\n".encode()[:2], "\u20ac\U0001F600\n".encode()[2:5], "\u20ac\U0001F600\n".encode()[5:]],
     ["\u20ac\U0001F600"]),
])
async def test_aiter_lines(serve, wire, parts, expected):
    body = b"".join(parts)
    srv = await serve(pieces(response(b"", f"Content-Length: {len(body)}", length=False), *parts),
                      reply(response(b"ok")))
    c = wire(max_connections=1)
    assert await lines_of(c, srv) == expected
    assert (await post(c, srv.url())).content == b"ok" and srv.accepted == 1


async def test_aiter_lines_does_not_depend_on_where_the_body_is_split(serve, wire):
    text = "α\r\nβ\rγ\n\nδ\u2028ε\x85ζ\r\n\r\n€ 😀 end"
    body = text.encode()
    expected = ["α", "β", "γ", "", "δ\u2028ε\x85ζ", "", "€ 😀 end"]  # only \n, \r\n and \r end a line
    head = response(b"", f"Content-Length: {len(body)}", length=False)
    srv = await serve(*[pieces(head + body[:i], body[i:], delay=0.001) for i in range(len(body) + 1)],
                      *[drip(CHUNKED_HEAD + chunked(body[:i], body[i:]), size=len(CHUNKED_HEAD) + 3 + i)
                        for i in range(1, len(body))])
    c = wire(max_connections=1)
    for i in range(2 * len(body)):
        assert await lines_of(c, srv) == expected, f"request {i}"
    assert srv.accepted == 1


async def test_sse_lines_are_yielded_as_they_arrive(serve, wire):
    acks: asyncio.Queue[str] = asyncio.Queue()
    events = [b'data: {"n": 1}\n\n', b": keep-alive\n\n", b'data: {"n": 2}\r\n\r\n', b"data: [DONE]\n\n"]

    async def sse(peer: Peer, req: Request) -> bool:
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for ev in events:
            await asyncio.sleep(0.01)
            await peer.send(b"%x\r\n%s\r\n" % (len(ev), ev))
            # the next event goes out only once the client has yielded this one
            await asyncio.wait_for(acks.get(), 1.0)
        await peer.send(b"0\r\n\r\n")
        return True

    srv = await serve(sse, reply(response(b"after")))
    c = wire(max_connections=1)
    seen = []
    async with c.stream("POST", srv.url(), content=b"{}", headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        async for line in r.aiter_lines():
            if line:
                seen.append(line)
                acks.put_nowait(line)
    assert seen == ['data: {"n": 1}', ": keep-alive", 'data: {"n": 2}', "data: [DONE]"]
    assert (await post(c, srv.url())).content == b"after" and srv.accepted == 1


async def test_large_body_streams_intact_with_backpressure(serve, wire):
    blob = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)  # 20 MiB
    assert len(blob) == 20 * 1024 * 1024

    async def big(peer: Peer, req: Request) -> bool:
        await peer.send(response(b"", f"Content-Length: {len(blob)}", length=False))
        view = memoryview(blob)
        for i in range(0, len(blob), 1 << 20):
            await peer.send(view[i:i + (1 << 20)])
        return True

    async def big_chunked(peer: Peer, req: Request) -> bool:
        await peer.send(CHUNKED_HEAD)
        for i in range(0, len(blob), 3 << 20):
            await peer.send(b"%x\r\n%s\r\n" % (len(blob[i:i + (3 << 20)]), blob[i:i + (3 << 20)]))
        await peer.send(b"0\r\n\r\n")
        return True

    srv = await serve(big, big_chunked, reply(response(b"small")))
    c = wire(max_connections=1)
    for _ in range(2):
        async with c.stream("POST", srv.url(), content=b"", headers={}) as r:
            conn = r._body.conn
            deadline = time.monotonic() + 2.0
            while not conn.paused:  # the unread body outgrew the buffer limit: the socket is paused
                assert time.monotonic() < deadline, "the client never paused reading"
                await asyncio.sleep(0.005)
            h, n = hashlib.sha256(), 0
            async for piece in r.aiter_bytes():
                h.update(piece)
                n += len(piece)
            assert not conn.paused  # and resumed once it was read
        assert n == len(blob) and h.digest() == hashlib.sha256(blob).digest()
    assert (await post(c, srv.url())).content == b"small" and srv.accepted == 1


async def test_leaving_a_stream_early_closes_that_connection(serve, wire):
    body = b"z" * 200_000

    async def slow_big(peer: Peer, req: Request) -> bool:
        await peer.send(response(b"", f"Content-Length: {len(body)}", length=False) + body[:1000])
        await asyncio.sleep(0.05)
        await peer.send(body[1000:])
        return True

    srv = await serve(slow_big, reply(response(b"x" * 100)), reply(response(b"fine")))
    c = wire(max_connections=1)
    async with c.stream("POST", srv.url(), content=b"", headers={}) as r:
        async for piece in r.aiter_bytes():
            assert piece and set(piece) == {ord("z")}
            break
    await srv.wait_for(lambda: srv.client_closed == 1)  # the server saw the client hang up
    async with c.stream("POST", srv.url(), content=b"", headers={}) as r:
        assert r.status_code == 200  # and not read at all
    await srv.wait_for(lambda: srv.client_closed == 2)
    assert (await post(c, srv.url())).content == b"fine"
    assert srv.accepted == 3


# --------------------------------------------------------------------------- the request on the wire


async def test_request_bytes(serve, wire):
    srv = await serve(default=reply(response(b"ok")))
    c = wire()
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "héllo"}]}, ensure_ascii=False).encode()
    await post(c, srv.url("/v1/chat/completions?x=1&y=2"), body,
               {"Content-Type": "application/json", "Authorization": "Bearer sk-test", "X-Custom": "v 1"})
    req = srv.requests[0]
    assert req.request_line == "POST /v1/chat/completions?x=1&y=2 HTTP/1.1"
    assert req.header_lines[0] == f"Host: 127.0.0.1:{srv.port}"
    assert {"Content-Type: application/json", "Authorization: Bearer sk-test", "X-Custom: v 1",
            f"Content-Length: {len(body)}"} <= set(req.header_lines)
    assert [h.split(":")[0].lower() for h in req.header_lines].count("content-length") == 1
    assert req.body == body
    assert req.raw_head.endswith(b"\r\n\r\n") and req.raw_head.count(b"\r\n\r\n") == 1

    async with c.stream("GET", f"http://127.0.0.1:{srv.port}", content=b"", headers={"Accept": "text/event-stream"}):
        pass
    req = srv.requests[1]
    assert req.request_line == "GET / HTTP/1.1"
    assert "Content-Length: 0" in req.header_lines and "Accept: text/event-stream" in req.header_lines
    assert req.body == b""
    assert srv.accepted == 1


async def test_aclose_closes_pooled_connections(serve, wire):
    gate = asyncio.Event()
    held = after(gate, response(b"ok"))

    srv = await serve(held, held)
    c = wire(max_connections=4)
    first = asyncio.gather(post(c, srv.url()), post(c, srv.url()))
    await srv.wait_for(lambda: len(srv.requests) == 2)
    gate.set()
    assert [r.content for r in await first] == [b"ok", b"ok"]
    assert srv.accepted == 2 and srv.client_closed == 0  # both are idle in the pool
    await c.aclose()
    await srv.wait_for(lambda: srv.client_closed == 2)
    assert c.is_closed
    with pytest.raises(RuntimeError):
        await post(c, srv.url())


# --------------------------------------------------------------------------- errors


async def test_connection_refused_is_a_connect_error(serve, wire):
    c = wire(max_connections=1)
    dead = f"http://127.0.0.1:{free_port()}/v1/x"
    for _ in range(3):  # each failure gives its slot back
        with pytest.raises(httpx.ConnectError):
            await post(c, dead)
    srv = await serve(reply(response(b"alive")))
    assert (await post(c, srv.url())).content == b"alive"


async def test_connect_timeout(serve, wire):
    srv = await serve(reply(response(b"alive")))
    c = wire(max_connections=1)
    for _ in range(2):
        with pytest.raises(httpx.ConnectTimeout):
            await post(c, srv.url(), timeout=httpx.Timeout(1.0, connect=0))
    assert (await post(c, srv.url())).content == b"alive"


async def test_server_that_never_answers_is_a_read_timeout(serve, wire):
    never = asyncio.Event()

    async def hang(peer: Peer, req: Request) -> bool:
        await never.wait()
        return True

    srv = await serve(hang, reply(response(b"alive")))
    c = wire(max_connections=1, timeout=httpx.Timeout(0.2))
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await post(c, srv.url())
    assert 0.15 < time.monotonic() - t0 < 0.6
    assert (await post(c, srv.url())).content == b"alive" and srv.accepted == 2


async def _never(peer: Peer, req: Request) -> bool:
    await asyncio.Event().wait()
    return True


async def _close_now(peer: Peer, req: Request) -> bool:
    return False


ERRORS: dict[str, tuple[Action, type[Exception]]] = {
    "closed before any response": (_close_now, httpx.RemoteProtocolError),
    "closed mid-head": (reply(b"HTTP/1.1 200 OK\r\nContent-Le", keep=False), httpx.RemoteProtocolError),
    "closed mid-body": (reply(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nonly part", keep=False),
                        httpx.RemoteProtocolError),
    "closed mid-chunked": (reply(CHUNKED_HEAD + b"a\r\n01234", keep=False), httpx.RemoteProtocolError),
    "closed before last chunk": (reply(CHUNKED_HEAD + b"3\r\nabc\r\n", keep=False), httpx.RemoteProtocolError),
    "malformed status line": (reply(b"HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), httpx.RemoteProtocolError),
    "non-numeric status": (reply(b"HTTP/1.1 OK 200\r\nContent-Length: 0\r\n\r\n"), httpx.RemoteProtocolError),
    "garbage instead of http": (reply(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), httpx.RemoteProtocolError),
    "header line without colon": (reply(b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n"), httpx.RemoteProtocolError),
    "bad content-length": (reply(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n"), httpx.RemoteProtocolError),
    "bad chunk size": (reply(CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n"), httpx.RemoteProtocolError),
    "head too large": (reply(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000), httpx.RemoteProtocolError),
    "stalled mid-body": (reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"), httpx.ReadTimeout),
    "never answers": (_never, httpx.ReadTimeout),
}


@pytest.mark.parametrize("name", list(ERRORS))
async def test_transport_errors_map_to_httpx_and_free_the_connection(serve, wire, name):
    action, exc = ERRORS[name]
    srv = await serve(action, default=echo_ok())
    c = wire(max_connections=1, timeout=httpx.Timeout(0.2))
    with pytest.raises(exc):
        await post(c, srv.url("/bad"))
    for i in range(3):  # the slot came back (else PoolTimeout) and the broken connection was dropped
        assert (await post(c, srv.url(f"/ok{i}"))).content == f"ok:/ok{i}".encode()
    assert srv.accepted == 2


@pytest.mark.parametrize("name", ["closed mid-body", "closed mid-chunked", "stalled mid-body"])
async def test_errors_while_streaming_a_body(serve, wire, name):
    action, exc = ERRORS[name]
    srv = await serve(action, default=echo_ok())
    c = wire(max_connections=1, timeout=httpx.Timeout(0.2))
    with pytest.raises(exc):
        async with c.stream("POST", srv.url("/bad"), content=b"", headers={}) as r:
            assert r.status_code == 200
            async for _ in r.aiter_bytes():
                pass
    assert (await post(c, srv.url("/ok"))).content == b"ok:/ok" and srv.accepted == 2


async def test_every_error_in_a_row_then_the_client_still_works(serve, wire):
    srv = await serve(*[a for a, _ in ERRORS.values()], default=echo_ok())
    c = wire(max_connections=1, timeout=httpx.Timeout(0.2))
    for _, exc in ERRORS.values():
        with pytest.raises(exc):
            await post(c, srv.url("/bad"))
    with pytest.raises(httpx.ConnectError):
        await post(c, f"http://127.0.0.1:{free_port()}/")
    for i in range(3):
        assert (await post(c, srv.url(f"/ok{i}"))).content == f"ok:/ok{i}".encode()
    assert srv.accepted == len(ERRORS) + 1


@pytest.mark.parametrize("headers", [{"X-Evil": "a\r\nX-Injected: 1"}, {"X-Evil": "a\nb"}, {"X-Evil": "a\rb"},
                                     {"X-Evil\r\nX-Injected": "1"}])
async def test_header_with_a_line_break_is_refused_before_sending(serve, wire, headers):
    srv = await serve(default=echo_ok())
    c = wire(max_connections=1)
    assert (await post(c, srv.url("/one"))).content == b"ok:/one"
    with pytest.raises(httpx.LocalProtocolError):
        await post(c, srv.url("/evil"), headers=headers)
    with pytest.raises(httpx.LocalProtocolError):
        async with c.stream("POST", srv.url("/evil"), content=b"", headers=headers):
            pass
    assert (await post(c, srv.url("/two"))).content == b"ok:/two"
    # nothing of the refused requests reached the server, and the pooled connection is intact
    assert [r.request_line for r in srv.requests] == ["POST /one HTTP/1.1", "POST /two HTTP/1.1"]
    assert all("X-Injected" not in line for r in srv.requests for line in r.header_lines)
    assert srv.accepted == 1


# --------------------------------------------------------------------------- the pool


async def test_one_connection_two_concurrent_requests_the_second_waits(serve, wire):
    gate = asyncio.Event()
    slow = after(gate, response(b"first"))

    srv = await serve(slow, reply(response(b"second")))
    c = wire(max_connections=1)
    t1 = asyncio.create_task(post(c, srv.url()))
    await srv.wait_for(lambda: len(srv.requests) == 1)
    t2 = asyncio.create_task(post(c, srv.url()))
    await asyncio.sleep(0.05)
    assert not t1.done() and not t2.done() and len(srv.requests) == 1 and srv.accepted == 1
    gate.set()
    r1, r2 = await asyncio.wait_for(asyncio.gather(t1, t2), 1.0)
    assert (r1.content, r2.content) == (b"first", b"second")
    assert srv.accepted == 1  # the second request waited for the first one's connection


async def test_pool_timeout_when_no_connection_frees_up(serve, wire):
    gate = asyncio.Event()
    slow = after(gate, response(b"first"))

    srv = await serve(slow, default=echo_ok())
    c = wire(max_connections=1, timeout=httpx.Timeout(1.0, pool=0.05))
    t1 = asyncio.create_task(post(c, srv.url()))
    await srv.wait_for(lambda: len(srv.requests) == 1)
    t0 = time.monotonic()
    with pytest.raises(httpx.PoolTimeout):
        await post(c, srv.url())
    assert time.monotonic() - t0 < 0.5
    gate.set()
    assert (await t1).content == b"first"
    assert (await post(c, srv.url("/after"))).content == b"ok:/after"
    assert srv.accepted == 1 and len(srv.requests) == 2  # the timed-out request never went out


async def test_a_stream_holds_its_connection_until_it_ends(serve, wire):
    srv = await serve(default=echo_ok())
    c = wire(max_connections=1, timeout=httpx.Timeout(1.0, pool=0.05))
    async with c.stream("POST", srv.url("/s"), content=b"", headers={}) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.PoolTimeout):  # the body is not read yet: the slot is taken
            await post(c, srv.url("/x"))
        assert await r.aread() == b"ok:/s"
    assert (await post(c, srv.url("/y"))).content == b"ok:/y" and srv.accepted == 1


# --------------------------------------------------------------------------- usable_for

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_usable_for_plain_http_only(no_proxy_env):
    assert usable_for("http://127.0.0.1:8000/v1")
    assert usable_for("http://gpu-box.lan/v1")
    assert not usable_for("https://api.openai.com/v1")
    assert not usable_for("HTTPS://api.openai.com/v1")
    assert not usable_for("ftp://example.org/")


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_usable_for_is_false_behind_a_proxy(no_proxy_env, var):
    no_proxy_env.setenv(var, "http://proxy.corp:3128")
    assert not usable_for("http://gpu-box.lan:8000/v1")
    assert not usable_for("http://127.0.0.1:8000/v1")


@pytest.mark.parametrize("no_proxy,host,expected", [
    ("127.0.0.1,localhost", "127.0.0.1:8000", True),
    ("localhost,.lan", "gpu-box.lan:8000", True),
    ("lan", "gpu-box.lan", True),
    ("*", "anything.example", True),
    ("other.lan", "gpu-box.lan:8000", False),
])
def test_usable_for_honours_no_proxy(no_proxy_env, no_proxy, host, expected):
    no_proxy_env.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    no_proxy_env.setenv("NO_PROXY", no_proxy)
    assert usable_for(f"http://{host}/v1") is expected


# --------------------------------------------------------------------------- end to end with the models


MSGS = [SystemMessage(content="be brief"), UserMessage(content="héllo ✓")]
TOOLS = [{"type": "function", "function": {
    "name": "bash", "description": "run",
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}]


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_compatible_gets_the_same_completion_over_wire_and_httpx(fake_server, no_proxy_env, stream):
    answer = Reply("Grüße aus der Ferne ✓ — 😀 " * 4, reasoning="thinking… " * 3, chunk_chars=3,
                   tool_calls=[{"name": "bash", "arguments": '{"cmd": "ls -la ü"}', "id": "call_1"}])
    srv = await fake_server([answer, answer])
    out = {}
    for kind, cls in (("wire", WireClient), ("httpx", httpx.AsyncClient)):
        m = OpenAICompatible("test-model", base_url=srv.base_url, api_key="sk-test", http_client=kind)
        try:
            if stream:
                deltas = [d async for d in m.stream(MSGS, TOOLS)]
                assert sum(1 for d in deltas if d.content) > 3  # it really streamed
                comp = deltas[-1].completion
                assert comp is not None
            else:
                comp = await m.complete(MSGS, TOOLS)
            assert isinstance(m._client(), cls)
        finally:
            await m.aclose()
        out[kind] = comp.model_dump(exclude={"latency_s", "id"})
    assert out["wire"] == out["httpx"]
    assert out["wire"]["message"]["content"] == answer.content
    [call] = out["wire"]["message"]["tool_calls"]
    assert (call["id"], call["name"], json.loads(call["arguments"])) == ("call_1", "bash", {"cmd": "ls -la ü"})
    assert out["wire"]["message"]["reasoning"] == answer.reasoning
    assert len(srv.requests) == 2 and srv.requests[0]["json"] == srv.requests[1]["json"]
    assert [r["headers"]["authorization"] for r in srv.requests] == ["Bearer sk-test"] * 2


def test_wire_client_refuses_https_base_url():
    with pytest.raises(ValueError, match="http://"):
        OpenAICompatible("m", base_url="https://api.example.com/v1", api_key="sk-x", http_client="wire")


async def test_raw_deflate_and_corrupt_gzip() -> None:
    """``deflate`` without its zlib header decodes too; a corrupt gzip body is a transport error
    (retried like any broken response), never a zlib exception escaping."""
    import zlib as _zlib

    raw = _zlib.compressobj(wbits=-_zlib.MAX_WBITS)
    payload = raw.compress(b"hello raw deflate") + raw.flush()
    bodies = [(b"deflate", payload), (b"gzip", b"\x1f\x8bnot really gzip")]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while bodies:
            await reader.readuntil(b"\r\n\r\n")
            enc, body = bodies.pop(0)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: " + enc + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                         + body)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"
    client = WireClient(timeout=httpx.Timeout(2.0))
    try:
        resp = await client.post(url, content=b"", headers={})
        assert resp.content == b"hello raw deflate"
        with pytest.raises(httpx.RemoteProtocolError, match="compressed body is corrupt"):
            await client.post(url, content=b"", headers={})
    finally:
        await client.aclose()
        server.close()
