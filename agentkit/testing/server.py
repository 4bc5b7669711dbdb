"""A scriptable fake OpenAI-compatible server for tests, benchmarks and demos.

It is written on raw ``asyncio.start_server`` rather than a web framework so the faults it
injects are real: a reset is a TCP RST, a stall is a socket that goes quiet, a malformed chunk
is bytes on the wire. It serves ``POST /v1/chat/completions`` and ``POST /v1/completions``
(both streaming and not) and ``GET /v1/models``.

Each request takes the next entry of ``script`` (a ``Reply`` or a ``Fault``); when the script
is used up the ``responder`` answers; without one the server answers 500 with a message saying
the script ran out. ``Chaos`` injects random faults *in front of* the script: a request hit by
chaos does not consume a script entry, so a client that retries still gets the scripted reply.

Command line (for subprocess tests and manual poking)::

    python -m agentkit.testing.server --script FILE.jsonl [--port N]

Each JSONL line is a reply (``{"content": ...}``, optionally wrapped as ``{"reply": {...}}``)
or a fault (``{"fault": {"status": 429, ...}}``). The base URL is printed on the first line.

A tool call in a reply takes either shape: ``{"name", "arguments"}`` (``arguments`` a JSON string
or an object; ``id`` optional) or OpenAI's ``{"id", "type": "function", "function": {"name",
"arguments"}}``. Scripting mistakes fail loudly: a malformed ``Reply`` raises ``ScriptError`` when
it is made; anything that goes wrong while answering (a responder that raises or returns something
else) answers that request, and every later one, 500 with the reason, and is kept in ``errors``:
``check()`` raises it, and so does leaving ``async with``/``with`` (pytest fixtures call ``check``).

Why one module over 450 lines: a test helper users copy whole; the HTTP handling, the script and
the fault injection are one state machine per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Literal, Union

FaultKind = Literal["http", "reset_before", "reset_during", "stall", "malformed_chunk", "error_chunk",
                    "keepalive_only"]

_REASON = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
           404: "Not Found", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
           422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class ScriptError(Exception):
    """A mistake in a fake server's script (a malformed reply, a responder that failed)."""


def _tool_call(c: Any, i: int) -> dict[str, Any]:
    """One scripted tool call in our shape, from ``{"name", "arguments"}`` or OpenAI's shape."""
    shapes = ('{"name": ..., "arguments": ...} or {"id": ..., "type": "function", '
              '"function": {"name": ..., "arguments": ...}}')
    if not isinstance(c, dict):
        raise ScriptError(f"tool call {i} is a {type(c).__name__}, not an object: use {shapes}")
    fn = c.get("function")
    if isinstance(fn, dict):
        name, args = fn.get("name"), fn.get("arguments", "{}")
    elif fn is not None:
        raise ScriptError(f"tool call {i}: 'function' must be an object: use {shapes}")
    else:
        name, args = c.get("name"), c.get("arguments", "{}")
    if not isinstance(name, str) or not name:
        raise ScriptError(f"tool call {i} has no name ({json.dumps(c, default=str)[:200]}): use {shapes}")
    if not isinstance(args, str):
        try:
            args = json.dumps(args, ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise ScriptError(f"tool call {i} ({name}): arguments are not JSON-serializable: {e}") from None
    out = {"name": name, "arguments": args}
    if c.get("id") is not None:
        out["id"] = str(c["id"])
    return out


@dataclass
class Reply:
    """One successful answer. ``content``/``reasoning``/``tool_calls`` feed chat completions,
    ``text`` (or ``content`` when ``text`` is None) feeds ``/v1/completions``. ``tool_calls``
    take ``{"name", "arguments"}`` or OpenAI's ``{"id", "type", "function": {...}}`` shape; a
    malformed one raises ``ScriptError`` here."""

    content: str | None = ""
    reasoning: str | None = None
    reasoning_field: str = "reasoning_content"  # or "reasoning" / "reasoning_details"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "arguments", "id"?}] or OpenAI's
    text: str | None = None
    finish_reason: str | None = None  # auto: "tool_calls" if tool_calls else "stop"
    usage: dict[str, Any] | None = None  # merged over an estimate; may add "cost", cache fields ...
    model: str | None = None  # default: the model the request named
    delay_s: float = 0.0  # pause before the response starts
    chunk_chars: int = 8  # streaming split size
    chunk_delay_s: float = 0.0  # pause between streamed chunks
    usage_in_separate_chunk: bool = False  # OpenAI style (choices: []) instead of on the finish chunk
    send_usage: bool = True  # False: no usage at all, like servers that never report it

    def __post_init__(self) -> None:
        if not isinstance(self.tool_calls, list):
            raise ScriptError(f"Reply.tool_calls must be a list, not {type(self.tool_calls).__name__}")
        self.tool_calls = [_tool_call(c, i) for i, c in enumerate(self.tool_calls)]


@dataclass
class Fault:
    """A failure to inject. ``kind="http"`` answers ``status`` with ``body`` (an OpenRouter-style
    error object by default); the other kinds break the connection or the stream itself.
    Mid-stream kinds first send ``after_chars`` characters of ``reply`` (or filler text).
    ``keepalive_only`` answers 200 and then sends only keep-alives (SSE comments, or blank lines
    for a non-streamed request) for ``stall_s`` seconds; ``stall_s=math.inf`` keeps that up until
    the client hangs up, like a stuck provider queue."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | str | None = None
    kind: FaultKind = "http"
    after_chars: int = 0
    stall_s: float = 30.0
    error_code: int | str = 500  # for error_chunk
    reply: Reply | None = None  # the partial output sent before a mid-stream fault


@dataclass
class Chaos:
    """Random faults, reproducible by ``seed``. Rates are per request, checked in field order."""

    seed: int = 0
    rate_429: float = 0
    rate_429_retry_after: float = 0  # Retry-After seconds sent with chaos 429s (0: header omitted)
    rate_5xx: float = 0
    rate_reset_before: float = 0
    rate_reset_during: float = 0
    rate_stall: float = 0
    rate_malformed: float = 0
    rate_error_chunk: float = 0
    rate_keepalive_only: float = 0  # 200, then only keep-alives for stall_s (the client's deadline must end it)
    keepalive_comments: bool = False  # sprinkle ": OPENROUTER PROCESSING"/": keep-alive" into streams
    stall_s: float = 30.0
    # At most this many faults for one request body: a client's retries of a call resend the same
    # body, so faults stay below its retry budget and every call gets through in the end.
    max_per_request: int | None = None


Entry = Union[Reply, Fault]
Responder = Callable[[dict[str, Any]], Union[Entry, Awaitable[Entry]]]
_FILLER = "The quick brown fox jumps over the lazy dog. "


class _Closed(Exception):
    """The connection is gone (or we closed it on purpose)."""



def _end_stream(chunks: list[dict[str, Any]], sent: list[int], total: int, last: dict[str, Any],
                reply: "Reply", usage: dict[str, Any]) -> None:
    """Append the finishing chunk, with usage in it or (as some providers do) in a chunk of its own."""
    if reply.send_usage and reply.usage_in_separate_chunk:
        chunks.append(last)
        sent.append(total)
        last = {k: last[k] for k in ("id", "object", "created", "model")} | {"choices": [], "usage": usage}
    elif reply.send_usage:
        last["usage"] = usage
    chunks.append(last)
    sent.append(total)

class FakeServer:
    """See the module docstring. Use ``async with`` or ``start_in_thread()``/``stop()``."""

    def __init__(self, script: list[Entry] | None = None, responder: Responder | None = None,
                 chaos: Chaos | None = None, latency_s: float = 0.0, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.script: list[Entry] = list(script or [])
        self.responder = responder
        self.chaos = chaos
        self.latency_s = latency_s
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []  # scripting errors: each answered 500; ``check()`` raises the first
        # What GET /v1/models lists: ids, or whole entries (OpenRouter's carry context_length, pricing)
        self.models: list[str | dict[str, Any]] = []
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(chaos.seed if chaos else 0)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._faults_per_body: Counter[int] = Counter()

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``http://127.0.0.1:PORT/v1``) to give a client."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    async def start(self) -> "FakeServer":
        """Listen on the current event loop (``async with`` does this); returns the server."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._on_connect, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        """Stop serving and drop open connections (does not raise for scripting errors: see ``check``)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "FakeServer":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        if exc[0] is None:
            self.check()

    def start_in_thread(self) -> "FakeServer":
        """Serve from a background thread (for sync code and subprocess clients)."""
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                errors.append(e)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.aclose())
            loop.close()

        self._thread = threading.Thread(target=run, name="FakeServer", daemon=True)
        self._thread.start()
        started.wait()
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop a server started with ``start_in_thread`` (does not raise: see ``check``)."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> "FakeServer":
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if exc[0] is None:
            self.check()

    def check(self) -> None:
        """Raise ``ScriptError`` if the script went wrong while serving (a test should fail)."""
        if self.errors:
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            raise ScriptError(self.errors[0] + more)

    # ------------------------------------------------------------------ connection handling
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                keep_alive = await self._serve(request, writer)
                if not keep_alive:
                    break
        except (_Closed, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # server shutting down: drop the connection, end quietly
            _abort(writer)
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise _Closed() from None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.readexactly(int(headers.get("content-length") or 0))
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        return {"method": method, "path": target.split("?", 1)[0], "headers": headers, "json": data,
                "raw": body}

    async def _serve(self, req: dict[str, Any], w: asyncio.StreamWriter) -> bool:
        """Answer one request; returns whether the connection stays open."""
        record = {"path": req["path"], "headers": req["headers"], "json": req["json"]}
        self.requests.append(record)
        keep_alive = req["headers"].get("connection", "").lower() != "close"
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        path = req["path"].rstrip("/")
        if req["method"] == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model"} if isinstance(m, str) else m for m in self.models]
            return await self._send_json(w, 200, {"object": "list", "data": data}, keep_alive=keep_alive)
        kind = "chat" if path.endswith("/chat/completions") else "text" if path.endswith("/completions") else None
        if req["method"] != "POST" or kind is None:
            return await self._send_json(w, 404, _error_body(404, f"no route for {req['method']} {req['path']}"),
                                         keep_alive=keep_alive)
        if not isinstance(req["json"], dict):
            return await self._send_json(w, 400, _error_body(400, "request body is not a JSON object"),
                                         keep_alive=keep_alive)
        body = req["json"]
        stream = bool(body.get("stream"))
        if self.errors:  # a broken script stays broken: a retry must not skip to the next reply
            return await self._send_json(w, 500, _error_body(500, self.errors[0]), keep_alive=keep_alive)

        entry = self._chaos_fault(req["raw"])
        chaos_hit = entry is not None
        if entry is None:
            try:
                entry = await self._next_entry(record)
                if entry is not None and not isinstance(entry, (Reply, Fault)):
                    raise ScriptError(f"got a {type(entry).__name__}, expected a Reply or a Fault")
            except Exception as e:  # noqa: BLE001 - a scripting error: answered 500 and recorded
                where = f"request {len(self.requests)}"
                self.errors.append(f"FakeServer script error at {where}: {type(e).__name__}: {e}")
                return await self._send_json(w, 500, _error_body(500, self.errors[-1]), keep_alive=keep_alive)
        if entry is None:
            return await self._send_json(w, 500, _error_body(
                500, f"FakeServer script exhausted after {len(self.requests) - 1} request(s) and no responder set"),
                keep_alive=keep_alive)
        if isinstance(entry, Fault):
            self.injected[entry.kind] += 1
            if entry.reply is None and chaos_hit:
                entry.reply = self._peek_reply()
            return await self._fault(entry, w, kind, body, stream, keep_alive)
        if entry.delay_s:
            await asyncio.sleep(entry.delay_s)
        self._counter += 1
        if stream:
            await self._stream(w, entry, kind, body)
            return keep_alive
        payload = self._chat_payload(entry, body) if kind == "chat" else self._text_payload(entry, body)
        return await self._send_json(w, 200, payload, keep_alive=keep_alive)

    async def _next_entry(self, record: dict[str, Any]) -> Entry | None:
        if self.script:
            return self.script.pop(0)
        if self.responder is not None:
            out = self.responder(record)
            return await out if inspect.isawaitable(out) else out  # type: ignore[return-value]
        return None

    def _peek_reply(self) -> Reply | None:
        """The reply the next request would get, for partial output of a chaos fault (not consumed)."""
        # The responder is not asked: it may count calls, and this request must not count.
        if self.script:
            head = self.script[0]
            return head if isinstance(head, Reply) else head.reply
        return None

    def _chaos_fault(self, raw: bytes) -> Fault | None:
        c = self.chaos
        if c is None:
            return None
        if c.max_per_request is not None:
            key = hash(raw)
            if self._faults_per_body[key] >= c.max_per_request:
                return None
            fault = self._random_fault(c)
            if fault is not None:
                self._faults_per_body[key] += 1
            return fault
        return self._random_fault(c)

    def _random_fault(self, c: Chaos) -> Fault | None:
        r = self._rng
        if r.random() < c.rate_429:
            hdr = {"Retry-After": _num(c.rate_429_retry_after)} if c.rate_429_retry_after else {}
            return Fault(status=429, headers=hdr)
        if r.random() < c.rate_5xx:
            return Fault(status=r.choice([500, 502, 503]))
        if r.random() < c.rate_reset_before:
            return Fault(kind="reset_before")
        if r.random() < c.rate_reset_during:
            return Fault(kind="reset_during", after_chars=r.randint(0, 40))
        if r.random() < c.rate_stall:
            return Fault(kind="stall", after_chars=r.randint(0, 40), stall_s=c.stall_s)
        if r.random() < c.rate_malformed:
            return Fault(kind="malformed_chunk", after_chars=r.randint(0, 40))
        if r.random() < c.rate_error_chunk:
            return Fault(kind="error_chunk", after_chars=r.randint(0, 40),
                         error_code=r.choice([502, 429, "server_error"]))
        if c.rate_keepalive_only and r.random() < c.rate_keepalive_only:  # no draw when off: seeds keep their faults
            return Fault(kind="keepalive_only", stall_s=c.stall_s)
        return None

    # ------------------------------------------------------------------ payloads
    def _id(self, kind: str) -> str:
        return ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:20]

    def _usage(self, reply: Reply, body: dict[str, Any], completion_text: str) -> dict[str, Any]:
        prompt_src = body.get("messages") if "messages" in body else body.get("prompt", "")
        prompt_text = prompt_src if isinstance(prompt_src, str) else json.dumps(prompt_src, ensure_ascii=False)
        if body.get("tools"):
            prompt_text += json.dumps(body["tools"], ensure_ascii=False)
        prompt = max(1, len(prompt_text) // 4)
        reasoning = len(reply.reasoning or "") // 4 + (1 if reply.reasoning else 0)
        completion = len(completion_text) // 4 + 1 + reasoning
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        if reply.usage:
            usage.update(reply.usage)
            if "total_tokens" not in reply.usage:
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return usage

    @staticmethod
    def _calls(reply: Reply) -> list[dict[str, Any]]:
        out = []
        for i, c in enumerate(reply.tool_calls):
            c = _tool_call(c, i)  # a Reply changed after it was made
            out.append({"id": c.get("id") or f"call_{uuid.uuid4().hex[:24]}", "name": c["name"],
                        "arguments": c["arguments"], "index": i})
        return out

    @staticmethod
    def _finish(reply: Reply, kind: str) -> str:
        if reply.finish_reason:
            return reply.finish_reason
        return "tool_calls" if reply.tool_calls and kind == "chat" else "stop"

    def _chat_payload(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        calls = self._calls(reply)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            if reply.reasoning_field == "reasoning_details":
                message["reasoning_details"] = [_detail(reply.reasoning)]
            else:
                message[reply.reasoning_field] = reply.reasoning
        if calls:
            message["tool_calls"] = [{"id": c["id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
        text = (reply.content or "") + "".join(c["name"] + c["arguments"] for c in calls)
        return {"id": self._id("chat"), "object": "chat.completion", "created": int(time.time()),
                "model": reply.model or body.get("model") or "fake-model",
                "choices": [{"index": 0, "message": message, "finish_reason": self._finish(reply, "chat"),
                             "logprobs": None}],
                **({"usage": self._usage(reply, body, text)} if reply.send_usage else {})}

    def _text_of(self, reply: Reply) -> str:
        return reply.text if reply.text is not None else (reply.content or "")

    def _text_payload(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        text = self._text_of(reply)
        return {"id": self._id("text"), "object": "text_completion", "created": int(time.time()),
                "model": reply.model or body.get("model") or "fake-model",
                "choices": [{"index": 0, "text": text, "finish_reason": self._finish(reply, "text"),
                             "logprobs": None}],
                **({"usage": self._usage(reply, body, text)} if reply.send_usage else {})}

    def _chunks(self, reply: Reply, kind: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[int]]:
        """All SSE chunks of a streamed reply, and for each the count of visible characters so far
        (used to place mid-stream faults after ``after_chars``)."""
        cid, created = self._id(kind), int(time.time())
        model = reply.model or body.get("model") or "fake-model"
        n = max(1, reply.chunk_chars)
        chunks: list[dict[str, Any]] = []
        sent: list[int] = []
        total = 0

        if kind == "text":
            def text_chunk(piece: str, finish: str | None) -> dict[str, Any]:
                return {"id": cid, "object": "text_completion", "created": created, "model": model,
                        "choices": [{"index": 0, "text": piece, "finish_reason": finish, "logprobs": None}]}

            text = self._text_of(reply)
            for piece in _split(text, n):
                total += len(piece)
                chunks.append(text_chunk(piece, None))
                sent.append(total)
            _end_stream(chunks, sent, total, text_chunk("", self._finish(reply, "text")), reply,
                        self._usage(reply, body, text))
            return chunks, sent

        def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

        chunks.append(chat_chunk({"role": "assistant", "content": ""}))
        sent.append(0)
        if reply.reasoning:
            for piece in _split(reply.reasoning, n):
                total += len(piece)
                if reply.reasoning_field == "reasoning_details":
                    delta: dict[str, Any] = {"content": "", "reasoning_details": [_detail(piece)]}
                else:
                    delta = {"content": "", reply.reasoning_field: piece}
                chunks.append(chat_chunk(delta))
                sent.append(total)
        for piece in _split(reply.content or "", n):
            total += len(piece)
            chunks.append(chat_chunk({"content": piece}))
            sent.append(total)
        calls = self._calls(reply)
        # Each call: a head delta (id, name, empty arguments) then argument pieces; several calls
        # are interleaved round-robin by index, as some providers do.
        queues = []
        for c in calls:
            q = [{"index": c["index"], "id": c["id"], "type": "function",
                  "function": {"name": c["name"], "arguments": ""}}]
            q += [{"index": c["index"], "function": {"arguments": p}} for p in _split(c["arguments"], n)]
            queues.append(q)
        while any(queues):
            for q in queues:
                if q:
                    d = q.pop(0)
                    total += len(d["function"].get("name", "")) + len(d["function"]["arguments"])
                    chunks.append(chat_chunk({"tool_calls": [d]}))
                    sent.append(total)
        text = (reply.content or "") + "".join(c["name"] + c["arguments"] for c in calls)
        _end_stream(chunks, sent, total, chat_chunk({}, self._finish(reply, "chat")), reply,
                    self._usage(reply, body, text))
        return chunks, sent

    # ------------------------------------------------------------------ writing
    async def _send_json(self, w: asyncio.StreamWriter, status: int, payload: Any, *,
                         headers: dict[str, str] | None = None, keep_alive: bool = True) -> bool:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        ctype = "text/plain; charset=utf-8" if isinstance(payload, str) else "application/json"
        await self._write_head(w, status, {"Content-Type": ctype, "Content-Length": str(len(data)),
                                           **({} if keep_alive else {"Connection": "close"}), **(headers or {})})
        w.write(data)
        await w.drain()
        return keep_alive

    async def _write_head(self, w: asyncio.StreamWriter, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {_REASON.get(status, 'Status')}", "Server: agentkit-fake"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        w.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await w.drain()

    async def _start_stream(self, w: asyncio.StreamWriter) -> None:
        await self._write_head(w, 200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                        "Transfer-Encoding": "chunked"})

    @staticmethod
    async def _send_chunk(w: asyncio.StreamWriter, data: bytes) -> None:
        if w.transport.is_closing():
            raise _Closed()
        w.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await w.drain()

    async def _sse(self, w: asyncio.StreamWriter, payload: dict[str, Any] | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        await self._send_chunk(w, f"data: {text}\n\n".encode())

    async def _end_stream(self, w: asyncio.StreamWriter) -> None:
        await self._send_chunk(w, b"")  # a zero-length chunk ends a chunked body

    async def _stream(self, w: asyncio.StreamWriter, reply: Reply, kind: str, body: dict[str, Any]) -> None:
        chunks, _ = self._chunks(reply, kind, body)
        keepalive = bool(self.chaos and self.chaos.keepalive_comments)
        await self._start_stream(w)
        if keepalive:
            await self._send_chunk(w, b": OPENROUTER PROCESSING\n\n")
        for i, chunk in enumerate(chunks):
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
            if keepalive and i % 3 == 1:
                await self._send_chunk(w, b": keep-alive\n\n\n")
            await self._sse(w, chunk)
        await self._sse(w, "[DONE]")
        await self._end_stream(w)

    async def _fault(self, f: Fault, w: asyncio.StreamWriter, kind: str, body: dict[str, Any], stream: bool,
                     keep_alive: bool) -> bool:
        if f.kind == "http":
            status = f.status or 500
            payload = f.body if f.body is not None else _error_body(status, f"injected HTTP {status}")
            return await self._send_json(w, status, payload, headers=f.headers, keep_alive=keep_alive)
        if f.kind == "reset_before":
            _abort(w)
            raise _Closed()
        reply = f.reply or Reply(content=(_FILLER * (f.after_chars // len(_FILLER) + 2)), text=None)
        if not stream:
            return await self._fault_plain(f, w, reply, kind, body)
        chunks, sent = self._chunks(reply, kind, body)
        await self._start_stream(w)
        if f.kind == "keepalive_only":
            await self._keepalives(w, f.stall_s, b": keep-alive\n\n")
            _abort(w)
            raise _Closed()
        # Send chunks until at least after_chars characters are out (always the role chunk).
        await self._sse(w, chunks[0])
        i = 1
        while i < len(chunks) - 1 and sent[i - 1] < f.after_chars:
            await self._sse(w, chunks[i])
            i += 1
        if f.kind == "reset_during":
            _abort(w)
            raise _Closed()
        if f.kind == "stall":
            await asyncio.sleep(f.stall_s)
            _abort(w)
            raise _Closed()
        if f.kind == "malformed_chunk":
            await self._send_chunk(w, b'data: {"id": "broken", "choices": [{"index": 0, "delta": {"content": "x\n\n')
            await self._end_stream(w)
            return False
        if f.kind == "error_chunk":
            err = {"id": chunks[0]["id"], "object": chunks[0]["object"], "created": chunks[0]["created"],
                   "model": chunks[0]["model"], "provider": "FakeProvider",
                   "error": {"code": f.error_code, "message": f"injected mid-stream error {f.error_code}",
                             "metadata": {"error_type": "server"}},
                   "choices": [{"index": 0, "delta": {"content": ""} if kind == "chat" else None,
                                "finish_reason": "error"}]}
            if kind == "text":
                err["choices"] = [{"index": 0, "text": "", "finish_reason": "error"}]
            await self._sse(w, err)
            await self._end_stream(w)
            return False
        raise ValueError(f"unknown fault kind {f.kind!r}")

    async def _fault_plain(self, f: Fault, w: asyncio.StreamWriter, reply: Reply, kind: str,
                           body: dict[str, Any]) -> bool:
        """Mid-response faults for a non-streaming request."""
        payload = self._chat_payload(reply, body) if kind == "chat" else self._text_payload(reply, body)
        data = json.dumps(payload).encode()
        if f.kind == "keepalive_only":  # DeepSeek keeps a queued non-stream request open with blank lines
            await self._write_head(w, 200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
            await self._keepalives(w, f.stall_s, b"\n")
            _abort(w)
            raise _Closed()
        if f.kind == "stall":
            await asyncio.sleep(f.stall_s)
            _abort(w)
            raise _Closed()
        if f.kind == "reset_during":
            await self._write_head(w, 200, {"Content-Type": "application/json", "Content-Length": str(len(data))})
            w.write(data[: max(1, min(len(data) - 1, f.after_chars or len(data) // 2))])
            await w.drain()
            _abort(w)
            raise _Closed()
        if f.kind == "malformed_chunk":
            bad = data[: len(data) // 2]
            await self._write_head(w, 200, {"Content-Type": "application/json", "Content-Length": str(len(bad)),
                                            "Connection": "close"})
            w.write(bad)
            await w.drain()
            return False
        if f.kind == "error_chunk":
            payload["error"] = {"code": f.error_code, "message": f"injected error {f.error_code}",
                                "metadata": {"error_type": "server"}}
            payload["choices"][0]["finish_reason"] = "error"
            return await self._send_json(w, 200, payload, keep_alive=False)
        raise ValueError(f"unknown fault kind {f.kind!r}")

    async def _keepalives(self, w: asyncio.StreamWriter, total_s: float, line: bytes) -> None:
        deadline = time.monotonic() + total_s
        while time.monotonic() < deadline:
            await self._send_chunk(w, line)
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _abort(w: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) so the client sees a real connection reset."""
    sock = w.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    w.transport.abort()


def _split(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)]


def _detail(text: str) -> dict[str, Any]:
    return {"type": "reasoning.text", "text": text, "signature": None, "format": "unknown", "index": 0}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message}}


# ---------------------------------------------------------------------- script files / CLI
def entry_from_dict(d: dict[str, Any]) -> Entry:
    """A script line as a ``Reply`` or ``Fault`` (``{"fault": {...}}`` or ``{"reply": {...}}``)."""
    if "fault" in d:
        f = dict(d["fault"])
        if isinstance(f.get("reply"), dict):
            f["reply"] = Reply(**f["reply"])
        return Fault(**f)
    return Reply(**d.get("reply", d))


def entry_to_dict(e: Entry) -> dict[str, Any]:
    return {"fault": asdict(e)} if isinstance(e, Fault) else asdict(e)


def load_script(path: str) -> list[Entry]:
    with open(path, encoding="utf-8") as fh:
        return [entry_from_dict(json.loads(line)) for line in fh if line.strip()]


async def _serve_forever(srv: FakeServer) -> None:
    async with srv:
        print(srv.base_url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agentkit.testing.server", description=__doc__.split("\n")[0])
    p.add_argument("--script", help="JSONL file of replies/faults, consumed one per request")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--chaos", help='JSON object of Chaos fields, e.g. \'{"seed": 1, "rate_429": 0.2}\'')
    p.add_argument("--echo", action="store_true", help="after the script, answer with the last user message")
    args = p.parse_args(argv)
    script = load_script(args.script) if args.script else []
    responder = None
    if args.echo:
        def responder(req: dict[str, Any]) -> Entry:
            msgs = (req.get("json") or {}).get("messages") or []
            last = next((m.get("content") for m in reversed(msgs) if m.get("role") == "user"), "")
            return Reply(content=str(last), text=str((req.get("json") or {}).get("prompt", "")))
    chaos = Chaos(**json.loads(args.chaos)) if args.chaos else None
    srv = FakeServer(script, responder=responder, chaos=chaos, host=args.host, port=args.port)
    try:
        asyncio.run(_serve_forever(srv))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
