"""The one HTTP client (aiohttp; httpx under a caller's transport): proxies from the environment,
credentials in URLs, headers sent once, SSE line ends, transport failures named and retried, no
"Unclosed client session" noise."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging

import pytest

from agentkit.errors import ModelError
from agentkit.messages import UserMessage
from agentkit.models.base import ModelEvent
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.testing.server import FakeServer, Reply

MSGS = [UserMessage(content="hi")]
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize("stream", [False, True])
async def test_http_proxy_from_the_environment_is_used(fake_server, no_proxy_env, stream):
    proxy = await fake_server([Reply("via the proxy", chunk_chars=4)])
    no_proxy_env.setenv("HTTP_PROXY", proxy.base_url.removesuffix("/v1"))
    m = OpenAICompatible("m", base_url="http://gpu-box.invalid:8000/v1", api_key="sk-x", max_retries=0)
    try:
        if stream:
            comp = [d async for d in m.stream(MSGS)][-1].completion
        else:
            comp = await m.complete(MSGS)
    finally:
        await m.aclose()
    assert comp is not None and comp.message.content == "via the proxy"
    [req] = proxy.requests
    assert req["path"] == "http://gpu-box.invalid:8000/v1/chat/completions"  # a proxy's absolute URI


async def test_no_proxy_goes_direct(fake_server, no_proxy_env):
    srv = await fake_server([Reply("direct")])
    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1,localhost")
    m = OpenAICompatible("m", base_url=srv.base_url, api_key="sk-x", max_retries=0)
    try:
        assert (await m.complete(MSGS)).message.content == "direct"
    finally:
        await m.aclose()
    assert srv.requests[0]["path"] == "/v1/chat/completions"


async def _raw_server(handle) -> tuple[asyncio.Server, str]:  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


@pytest.mark.parametrize("mine", [
    {"Accept-Encoding": "identity", "User-Agent": "mine/1"},
    {"accept-encoding": "identity", "user-agent": "mine/1", "content-type": "application/json"},  # any case
])
async def test_headers_the_caller_also_sets_are_sent_once(no_proxy_env, mine):
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        body = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server, url = await _raw_server(handle)
    host = url.split("/")[2]
    m = OpenAICompatible("m", base_url=url, api_key="sk-x", max_retries=0,
                         headers={"Host": host, **mine})
    try:
        assert (await m.complete(MSGS)).message.content == "ok"
    finally:
        await m.aclose()
        server.close()
    names = [line.split(b":")[0].lower() for line in heads[0].split(b"\r\n")[1:] if line]
    for name in (b"host", b"content-length", b"accept-encoding", b"content-type", b"authorization", b"user-agent"):
        assert names.count(name) == 1, heads[0]
    assert b"\r\nuser-agent: mine/1\r\n" in heads[0].lower()


@pytest.mark.parametrize("reply,expected", [
    (b"", "broke"),  # the server hangs up before answering
    (b"NOT HTTP AT ALL\r\n\r\n", "broke"),  # aiohttp's own error for a bad status line
    (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"choices\"", "broke"),  # cut short
])
async def test_transport_failures_are_named_and_retried(no_proxy_env, reply, expected):
    calls = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.transport.abort()

    server, url = await _raw_server(handle)
    events: list[ModelEvent] = []

    async def no_wait(_: float) -> None:
        return None

    m = OpenAICompatible("m", base_url=url, api_key="sk-x", max_retries=1, sleep=no_wait)
    try:
        with pytest.raises(ModelError) as info:
            await m.complete(MSGS, on_event=events.append)
    finally:
        await m.aclose()
        server.close()
    assert info.value.retryable and calls == 2 and len(events) == 1
    assert expected in str(info.value) and "timed out" not in str(info.value), str(info.value)


def test_a_model_used_by_two_event_loops_logs_no_unclosed_session(no_proxy_env, caplog):
    srv = FakeServer([Reply("one"), Reply("two")]).start_in_thread()
    try:
        m = OpenAICompatible("m", base_url=srv.base_url, api_key="sk-x", max_retries=0)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            assert asyncio.run(m.complete(MSGS)).message.content == "one"
            assert m.complete_sync(MSGS).message.content == "two"  # a second loop, then closed
            del m
            gc.collect()
    finally:
        srv.stop()
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def _reply_server(reply: bytes, heads: list[bytes]) -> tuple[asyncio.Server, str]:
    """A server that records each request head and answers ``reply`` (then closes)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        writer.write(reply)
        await writer.drain()
        writer.close()

    return await _raw_server(handle)


OK_BODY = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}'
OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(OK_BODY) + OK_BODY


async def test_credentials_in_the_base_url_are_sent_as_basic_auth(no_proxy_env):
    heads: list[bytes] = []
    server, url = await _reply_server(OK_REPLY, heads)
    m = OpenAICompatible("m", base_url=url.replace("http://", "http://user:pa%20ss@"), api_key="sk-x", max_retries=0)
    try:
        assert (await m.complete(MSGS)).message.content == "ok"
    finally:
        await m.aclose()
        server.close()
    auth = [line.split(b":", 1)[1].strip() for line in heads[0].split(b"\r\n") if line.lower().startswith(b"authorization:")]
    assert auth == [b"Basic " + base64.b64encode(b"user:pa ss")], heads[0]  # over the key's Bearer
    assert heads[0].startswith(b"POST /v1/chat/completions ")


async def test_proxy_credentials_go_in_proxy_authorization(no_proxy_env):
    heads: list[bytes] = []
    proxy, proxy_url = await _reply_server(OK_REPLY, heads)
    no_proxy_env.setenv("HTTP_PROXY", proxy_url.removesuffix("/v1").replace("http://", "http://me:secret@"))
    m = OpenAICompatible("m", base_url="http://gpu-box.invalid:8000/v1", api_key="sk-x", max_retries=0)
    try:
        assert (await m.complete(MSGS)).message.content == "ok"
    finally:
        await m.aclose()
        proxy.close()
    assert heads[0].startswith(b"POST http://gpu-box.invalid:8000/v1/chat/completions ")
    assert b"\r\nProxy-Authorization: Basic " + base64.b64encode(b"me:secret") + b"\r\n" in heads[0], heads[0]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
async def test_stream_lines_end_at_lf_crlf_or_cr(no_proxy_env, eol):
    """SSE lines end at CRLF, LF or CR; a CRLF split over two reads is one line end."""
    chunks = [b'data: {"choices":[{"index":0,"delta":{"content":"he\xe2\x80\xa8y"}}]}', eol, eol,
              b'data: {"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}', eol, eol,
              b"data: [DONE]", eol, eol]
    body = b"".join(chunks)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 7):  # small writes, so line ends and UTF-8 fall across reads
            writer.write(body[i:i + 7])
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.close()

    server, url = await _raw_server(handle)
    m = OpenAICompatible("m", base_url=url, api_key="sk-x", max_retries=0)
    try:
        comp = [d async for d in m.stream(MSGS)][-1].completion
    finally:
        await m.aclose()
        server.close()
    assert comp is not None and comp.message.content == "he\u2028y!"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_callers_httpx_transport_carries_the_requests(no_proxy_env, stream):
    """``transport=`` (any httpx transport, here a mock) replaces aiohttp, proxies from the
    environment are not used then, and errors it raises are retried like aiohttp's."""
    import httpx

    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail if it were used
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ConnectError("refused")
        if stream:
            body = (b'data: {"choices":[{"index":0,"delta":{"content":"mocked"}}]}\n\n'
                    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
            return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, content=OK_BODY.replace(b'"ok"', b'"mocked"'),
                              headers={"content-type": "application/json"})

    async def no_wait(_: float) -> None:
        return None

    m = OpenAICompatible("m", base_url="http://api.example.test/v1", api_key="sk-x", max_retries=1, sleep=no_wait,
                         transport=httpx.MockTransport(answer))
    try:
        comp = [d async for d in m.stream(MSGS)][-1].completion if stream else await m.complete(MSGS)
    finally:
        await m.aclose()
    assert comp is not None and comp.message.content == "mocked" and len(seen) == 2
    assert str(seen[1].url) == "http://api.example.test/v1/chat/completions"
    assert seen[1].headers["authorization"] == "Bearer sk-x"
