"""The fake OpenAI-compatible server: its replies validate against the ``openai`` package's own
types (and its real client), and its faults are real on the wire."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import openai
import pytest
from openai.types import Completion as TextCompletion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from agentkit.testing.server import Chaos, Fault, Reply, entry_from_dict, entry_to_dict

MSGS = [{"role": "user", "content": "hello"}]


async def sse_events(resp: httpx.Response) -> list[str]:
    """Raw SSE lines of a streamed response (data payloads and comments), in order."""
    out = []
    async for line in resp.aiter_lines():
        if line:
            out.append(line)
    return out


async def stream_chunks(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[list[dict], list[str]]:
    async with client.stream("POST", url, json={**body, "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = await sse_events(resp)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(x[len("data: "):]) for x in lines[:-1] if x.startswith("data: ")]
    return chunks, lines


def assemble(chunks: list[dict]) -> dict[str, Any]:
    """Put a chat stream back together the way a client must (tool calls by index)."""
    content, reasoning, calls, finish, usage = "", "", {}, None, None
    for ch in chunks:
        if ch.get("usage"):
            usage = ch["usage"]
        for choice in ch["choices"]:
            d = choice["delta"]
            content += d.get("content") or ""
            reasoning += d.get("reasoning_content") or d.get("reasoning") or ""
            reasoning += "".join(x["text"] for x in d.get("reasoning_details") or [])
            for tc in d.get("tool_calls") or []:
                slot = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = tc.get("id") or slot["id"]
                slot["name"] += tc.get("function", {}).get("name") or ""
                slot["arguments"] += tc.get("function", {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"content": content, "reasoning": reasoning, "calls": [calls[i] for i in sorted(calls)],
            "finish": finish, "usage": usage}


async def test_chat_non_stream_validates_and_records_request(fake_server):
    srv = await fake_server([Reply("Hi!", reasoning="because", tool_calls=[{"name": "ls", "arguments": '{"p": "."}'}])])
    async with httpx.AsyncClient() as c:
        r = await c.post(srv.base_url + "/chat/completions", json={"model": "m1", "messages": MSGS},
                         headers={"Authorization": "Bearer sk-test"})
    assert r.status_code == 200
    cc = ChatCompletion.model_validate(r.json())
    assert cc.model == "m1"
    msg = cc.choices[0].message
    assert msg.content == "Hi!"
    assert r.json()["choices"][0]["message"]["reasoning_content"] == "because"
    assert msg.tool_calls and msg.tool_calls[0].function.name == "ls"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"p": "."}
    assert cc.choices[0].finish_reason == "tool_calls"
    assert cc.usage and cc.usage.total_tokens == cc.usage.prompt_tokens + cc.usage.completion_tokens
    assert srv.requests == [{"path": "/v1/chat/completions", "headers": srv.requests[0]["headers"],
                             "json": {"model": "m1", "messages": MSGS}}]
    assert srv.requests[0]["headers"]["authorization"] == "Bearer sk-test"


async def test_openai_sdk_reads_replies(fake_server):
    calls = [{"name": "a", "arguments": '{"x": [1, 2, 3], "y": "long text here"}'},
             {"name": "b", "arguments": '{"q": "second call"}'}]
    srv = await fake_server([Reply("plain"), Reply("streamed text", tool_calls=calls, chunk_chars=3)])
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-x", max_retries=0)
    try:
        first = await client.chat.completions.create(model="m", messages=MSGS)
        assert first.choices[0].message.content == "plain"
        stream = await client.chat.completions.create(model="m", messages=MSGS, stream=True)
        got = [chunk async for chunk in stream]
    finally:
        await client.close()
    assert all(isinstance(c, ChatCompletionChunk) for c in got)
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    assert text == "streamed text"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "reasoning_details"])
async def test_chat_stream_chunks_validate_and_interleave_tool_calls(fake_server, field):
    calls = [{"name": "read_file", "arguments": '{"path": "src/main.py", "start": 1}', "id": "call_A"},
             {"name": "search", "arguments": '{"questions": "x || y"}'},
             {"name": "noargs", "arguments": "{}"}]
    srv = await fake_server([Reply("Let me look.", reasoning="Think first, then act.", reasoning_field=field,
                                   tool_calls=calls, chunk_chars=5)])
    async with httpx.AsyncClient() as c:
        chunks, _ = await stream_chunks(c, srv.base_url + "/chat/completions", {"model": "m", "messages": MSGS})
    for ch in chunks:
        ChatCompletionChunk.model_validate(ch)
    got = assemble(chunks)
    assert got["content"] == "Let me look."
    assert got["reasoning"] == "Think first, then act."
    assert [(x["name"], x["arguments"]) for x in got["calls"]] == [(x["name"], x["arguments"]) for x in calls]
    assert got["calls"][0]["id"] == "call_A" and got["calls"][1]["id"].startswith("call_")
    assert got["finish"] == "tool_calls"
    assert got["usage"]["completion_tokens"] > 0
    # The reasoning arrives in the requested field only.
    keys = {k for ch in chunks for choice in ch["choices"] for k in choice["delta"]}
    assert field in keys and not ({"reasoning_content", "reasoning", "reasoning_details"} - {field}) & keys
    # Interleaved: the index sequence goes back and forth rather than finishing call 0 first.
    order = [tc["index"] for ch in chunks for choice in ch["choices"] for tc in choice["delta"].get("tool_calls", [])]
    assert order[:3] == [0, 1, 2] and order != sorted(order)
    # Usage rides on the last chunk.
    assert "usage" in chunks[-1] and all("usage" not in ch for ch in chunks[:-1])


async def test_usage_override_and_separate_usage_chunk(fake_server):
    usage = {"prompt_tokens": 1000, "completion_tokens": 10, "cost": 0.00123,
             "prompt_tokens_details": {"cached_tokens": 800}, "prompt_cache_hit_tokens": 800}
    srv = await fake_server([Reply("x", usage=usage), Reply("y", usage=usage, usage_in_separate_chunk=True)])
    async with httpx.AsyncClient() as c:
        r = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        chunks, _ = await stream_chunks(c, srv.base_url + "/chat/completions", {"model": "m", "messages": MSGS})
    u = ChatCompletion.model_validate(r.json()).usage
    assert u and u.prompt_tokens == 1000 and u.total_tokens == 1010
    assert u.prompt_tokens_details and u.prompt_tokens_details.cached_tokens == 800
    assert r.json()["usage"]["cost"] == 0.00123 and r.json()["usage"]["prompt_cache_hit_tokens"] == 800
    for ch in chunks:
        ChatCompletionChunk.model_validate(ch)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["cost"] == 0.00123
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_text_completions_stream_and_non_stream(fake_server):
    srv = await fake_server([Reply(text="<｜tool▁calls▁begin｜>raw"), Reply(text="streamed raw text", chunk_chars=4,
                                                                      finish_reason="length")])
    async with httpx.AsyncClient() as c:
        r = await c.post(srv.base_url + "/completions", json={"model": "m", "prompt": "<｜begin▁of▁sentence｜>hi"})
        chunks, _ = await stream_chunks(c, srv.base_url + "/completions", {"model": "m", "prompt": "p"})
    comp = TextCompletion.model_validate(r.json())
    assert comp.choices[0].text == "<｜tool▁calls▁begin｜>raw" and comp.choices[0].finish_reason == "stop"
    assert comp.usage and comp.usage.prompt_tokens > 0
    for ch in chunks:
        # OpenAI's type declares finish_reason non-null, yet streams (OpenAI's and vLLM's) send null
        # until the last chunk; validate everything else strictly.
        fixed = {**ch, "choices": [{**x, "finish_reason": x["finish_reason"] or "stop"} for x in ch["choices"]]}
        TextCompletion.model_validate(fixed)
    assert "".join(x["text"] for ch in chunks for x in ch["choices"]) == "streamed raw text"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length" and chunks[-1]["usage"]["completion_tokens"] > 0
    assert [q["path"] for q in srv.requests] == ["/v1/completions", "/v1/completions"]


async def test_openai_sdk_text_completion(fake_server):
    srv = await fake_server([Reply(text="done")])
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
    try:
        out = await client.completions.create(model="m", prompt="x")
    finally:
        await client.close()
    assert out.choices[0].text == "done"


async def test_script_then_responder_then_exhausted(fake_server):
    seen = []

    def responder(req):
        seen.append(req["json"]["messages"][-1]["content"])
        return Reply(content="echo:" + req["json"]["messages"][-1]["content"])

    srv = await fake_server([Reply("scripted")], responder=responder)
    bare = await fake_server([])
    async with httpx.AsyncClient() as c:
        a = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        b = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        e = await c.post(bare.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        nf = await c.post(bare.base_url + "/nope", json={})
    assert a.json()["choices"][0]["message"]["content"] == "scripted"
    assert b.json()["choices"][0]["message"]["content"] == "echo:hello" and seen == ["hello"]
    assert e.status_code == 500 and "script exhausted" in e.json()["error"]["message"]
    assert nf.status_code == 404


async def test_http_fault_with_retry_after(fake_server):
    srv = await fake_server([Fault(status=429, headers={"Retry-After": "2"}),
                             Fault(status=402, body={"error": {"code": 402, "message": "Insufficient credits"}}),
                             Fault(status=503, body="plain text outage")])
    async with httpx.AsyncClient() as c:
        r1 = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        r2 = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        r3 = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
    assert r1.status_code == 429 and r1.headers["retry-after"] == "2" and r1.json()["error"]["code"] == 429
    assert r2.status_code == 402 and r2.json()["error"]["message"] == "Insufficient credits"
    assert r3.status_code == 503 and r3.text == "plain text outage"
    assert srv.injected["http"] == 3


async def test_reset_before_is_a_real_connection_error(fake_server):
    srv = await fake_server([Fault(kind="reset_before"), Reply("after")])
    async with httpx.AsyncClient() as c:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        ok = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
    assert ok.json()["choices"][0]["message"]["content"] == "after"
    assert srv.injected["reset_before"] == 1


async def test_reset_during_stream_keeps_partial_on_wire(fake_server):
    srv = await fake_server([Fault(kind="reset_during", after_chars=10, reply=Reply("0123456789abcdefghij",
                                                                                    chunk_chars=5))])
    got: list[str] = []
    async with httpx.AsyncClient() as c:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            async with c.stream("POST", srv.base_url + "/chat/completions",
                                json={"model": "m", "messages": MSGS, "stream": True}) as resp:
                async for line in resp.aiter_lines():
                    got.append(line)
    text = "".join(json.loads(x[6:])["choices"][0]["delta"].get("content", "") for x in got if x.startswith("data: {"))
    assert text == "0123456789"


async def test_stall_trips_a_read_timeout(fake_server):
    srv = await fake_server([Fault(kind="stall", stall_s=5, after_chars=3, reply=Reply("abcdefgh", chunk_chars=4))])
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.3)) as c:
        got = []
        with pytest.raises(httpx.ReadTimeout):
            async with c.stream("POST", srv.base_url + "/chat/completions",
                                json={"model": "m", "messages": MSGS, "stream": True}) as resp:
                async for line in resp.aiter_lines():
                    got.append(line)
    assert any('"abcd"' in x for x in got)


async def test_malformed_and_error_chunks(fake_server):
    srv = await fake_server([Fault(kind="malformed_chunk", after_chars=4, reply=Reply("abcdefgh", chunk_chars=4)),
                             Fault(kind="error_chunk", error_code="server_error", after_chars=4,
                                   reply=Reply("abcdefgh", chunk_chars=4)),
                             Fault(kind="error_chunk", error_code=429)])
    body = {"model": "m", "messages": MSGS, "stream": True}
    async with httpx.AsyncClient() as c:
        async with c.stream("POST", srv.base_url + "/chat/completions", json=body) as resp:
            lines = await sse_events(resp)
        with pytest.raises(json.JSONDecodeError):
            json.loads(lines[-1][6:])
        assert json.loads(lines[1][6:])["choices"][0]["delta"]["content"] == "abcd"
        async with c.stream("POST", srv.base_url + "/chat/completions", json=body) as resp:
            lines = await sse_events(resp)
        last = json.loads(lines[-1][6:])
        assert last["error"]["code"] == "server_error" and last["choices"][0]["finish_reason"] == "error"
        assert json.loads(lines[1][6:])["choices"][0]["delta"]["content"] == "abcd"
        r = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        assert r.status_code == 200 and r.json()["error"]["code"] == 429
    assert srv.injected == {"malformed_chunk": 1, "error_chunk": 2}


async def test_keepalive_only_sends_nothing_but_comments(fake_server):
    srv = await fake_server([Fault(kind="keepalive_only", stall_s=0.3)])
    lines = []
    async with httpx.AsyncClient() as c:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            async with c.stream("POST", srv.base_url + "/chat/completions",
                                json={"model": "m", "messages": MSGS, "stream": True}) as resp:
                async for line in resp.aiter_lines():
                    lines.append(line)
    assert lines and set(filter(None, lines)) == {": keep-alive"}


async def test_chaos_is_seeded_does_not_consume_script_and_keeps_alive(fake_server):
    async def kinds(seed: int) -> list[str]:
        srv = await fake_server([], responder=lambda req: Reply("ok"),
                                chaos=Chaos(seed=seed, rate_429=0.3, rate_5xx=0.3))
        statuses = []
        async with httpx.AsyncClient() as c:
            for _ in range(12):
                r = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
                statuses.append(str(r.status_code))
        assert sum(srv.injected.values()) == sum(s != "200" for s in statuses)
        return statuses

    a, b = await kinds(7), await kinds(7)
    assert a == b and "200" in a and set(a) - {"200"}

    srv = await fake_server([Reply("first"), Reply("second")],
                            chaos=Chaos(seed=1, rate_429=1.0, rate_429_retry_after=3))
    async with httpx.AsyncClient() as c:
        r = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        srv.chaos = Chaos(keepalive_comments=True)
        chunks, lines = await stream_chunks(c, srv.base_url + "/chat/completions", {"model": "m", "messages": MSGS})
    assert lines[0] == ": OPENROUTER PROCESSING" and ": keep-alive" in lines
    assert assemble(chunks)["content"] == "first"  # the chaos 429 did not eat the script entry


async def test_chaos_mid_stream_uses_the_next_reply_as_partial(fake_server):
    srv = await fake_server([Reply("scripted answer", chunk_chars=4)],
                            chaos=Chaos(seed=3, rate_error_chunk=1.0))
    async with httpx.AsyncClient() as c:
        async with c.stream("POST", srv.base_url + "/chat/completions",
                            json={"model": "m", "messages": MSGS, "stream": True}) as resp:
            lines = await sse_events(resp)
    assert "error" in json.loads(lines[-1][6:])
    partial = "".join(json.loads(x[6:])["choices"][0]["delta"].get("content", "") for x in lines[:-1])
    assert "scripted answer".startswith(partial)
    assert len(srv.script) == 1


def test_thread_mode_and_script_roundtrip(fake_server_thread):
    entries = [Reply("a", tool_calls=[{"name": "t", "arguments": "{}"}]), Fault(status=500, headers={"X": "1"})]
    assert [entry_from_dict(json.loads(json.dumps(entry_to_dict(e)))) for e in entries] == entries
    srv = fake_server_thread(entries)
    with httpx.Client() as c:
        r = c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
        r2 = c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS})
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "t"
    assert r2.status_code == 500 and r2.headers["x"] == "1"


def test_command_line_server(tmp_path):
    script = tmp_path / "s.jsonl"
    script.write_text(json.dumps({"content": "from file"}) + "\n" + json.dumps({"fault": {"status": 418}}) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "agentkit.testing.server", "--script", str(script)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with httpx.Client() as c:
            r = c.post(url + "/chat/completions", json={"model": "m", "messages": MSGS})
            r2 = c.post(url + "/chat/completions", json={"model": "m", "messages": MSGS})
        assert r.json()["choices"][0]["message"]["content"] == "from file"
        assert r2.status_code == 418
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_keepalive_forever_lasts_until_the_client_hangs_up(fake_server):
    import math

    srv = await fake_server([Fault(kind="keepalive_only", stall_s=math.inf)])
    lines: list[str] = []
    async with httpx.AsyncClient() as c:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.4):
                async with c.stream("POST", srv.base_url + "/chat/completions",
                                    json={"model": "m", "messages": MSGS, "stream": True}) as resp:
                    async for line in resp.aiter_lines():
                        lines.append(line)
    assert len(lines) > 4 and set(filter(None, lines)) == {": keep-alive"}
    for _ in range(100):  # the server notices the hang-up and ends that connection
        if not srv._tasks:
            break
        await asyncio.sleep(0.02)
    assert not srv._tasks


async def test_chaos_max_per_request_caps_faults_on_retries_of_one_body(fake_server):
    srv = await fake_server([], responder=lambda req: Reply("ok"),
                            chaos=Chaos(seed=3, rate_5xx=1.0, max_per_request=2))
    async with httpx.AsyncClient() as c:
        for n in range(3):  # three different calls, each retried until it is answered
            statuses = []
            while not statuses or statuses[-1] != 200:
                r = await c.post(srv.base_url + "/chat/completions", json={"model": "m", "messages": MSGS, "n": n})
                statuses.append(r.status_code)
            assert len(statuses) == 3 and statuses[-1] == 200
    assert sum(srv.injected.values()) == 6


# --- scripting: both tool-call shapes, and mistakes that fail loudly (issue 15, part 6) ---------
async def test_scripted_tool_calls_take_both_shapes(fake_server) -> None:
    from agentkit.agent import Agent
    from agentkit.models.openai_compat import OpenAICompatible
    from agentkit.tools.base import tool

    seen: list[str] = []

    @tool
    def note(text: str) -> str:
        """Take a note."""
        seen.append(text)
        return "noted"

    srv = await fake_server([
        Reply(tool_calls=[{"name": "note", "arguments": {"text": "ours"}}]),
        Reply(tool_calls=[{"id": "call_1", "type": "function",
                           "function": {"name": "note", "arguments": '{"text": "openai"}'}}]),
        Reply(content="done"),
    ])
    model = OpenAICompatible("m", base_url=srv.base_url, api_key="k")
    try:
        result = await Agent(model, [note]).run("t")
    finally:
        await model.aclose()
    assert result.answer == "done" and seen == ["ours", "openai"]
    sent = srv.requests[2]["json"]["messages"]
    assert [c["id"] for m in sent if m["role"] == "assistant" for c in m.get("tool_calls", [])][1] == "call_1"


def test_a_malformed_scripted_call_fails_when_it_is_made() -> None:
    from agentkit.testing.server import FakeServer, ScriptError

    with pytest.raises(ScriptError, match=r"tool call 0 has no name.*\{\"name\": \.\.\., \"arguments\": \.\.\.\}"):
        Reply(tool_calls=[{"tool": "note"}])


async def test_a_scripting_error_answers_500_every_time_and_fails_the_test() -> None:
    from agentkit.testing.server import FakeServer, ScriptError

    def responder(request: dict) -> Reply:
        raise KeyError("name")

    srv = FakeServer([], responder=responder)
    await srv.start()
    async with httpx.AsyncClient() as client:
        r1 = await client.post(f"{srv.base_url}/chat/completions", json={"messages": []})
        srv.script.append(Reply(content="would hide the error"))
        r2 = await client.post(f"{srv.base_url}/chat/completions", json={"messages": []})
    await srv.aclose()
    assert r1.status_code == r2.status_code == 500  # a retry does not skip to the next reply
    assert "script error at request 1: KeyError" in r1.json()["error"]["message"]
    assert len(srv.errors) == 1
    with pytest.raises(ScriptError, match="KeyError"):
        srv.check()
    with pytest.raises(ScriptError):
        async with FakeServer([], responder=responder) as srv2:
            async with httpx.AsyncClient() as client:
                await client.post(f"{srv2.base_url}/chat/completions", json={"messages": []})
