"""The one HTTP client (httpx over the aiohttp transport): proxies from the environment, headers
sent once, transport failures named and retried, no "Unclosed client session" noise."""

from __future__ import annotations

import asyncio
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


async def test_headers_the_caller_also_sets_are_sent_once(no_proxy_env):
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
                         headers={"Host": host, "Accept-Encoding": "identity", "User-Agent": "mine/1"})
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
