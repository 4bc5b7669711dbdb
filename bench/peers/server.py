"""A scripted OpenAI-compatible server for the benchmarks, stdlib only, with server-side timing.

Why not the test suite's FakeServer: per-step overhead must EXCLUDE server time, so the server
itself stamps when each request's first byte arrived and when its response's last byte left;
the framework's time per step is then the gap between one response leaving and the next
request arriving. It runs in its own process (any Python >= 3.9) so it never competes for the
GIL with the framework being measured.

Every framework gets the same episode: ``steps`` turns that each call one tool, then one final
turn. The path says how the episode ends and which tool it calls:
``/{final}/{tool}/{steps}/v1/chat/completions`` where ``final`` is ``text`` (plain answer),
``bash-submit`` (a bash call printing mini-swe-agent's submit marker) or ``final_answer``
(smolagents' final-answer tool). Runs are told apart by a ``[[run:ID]]`` tag in the task
text, so 200 concurrent runs each get their own step counter.

``GET /stats`` returns ``{"runs": {id: [[recv, sent], ...]}}`` (monotonic seconds);
``POST /reset`` clears them. Usage: ``python server.py [--port N] [--latency S]`` prints
``http://127.0.0.1:PORT`` on its first line and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import defaultdict

_RUN_RE = re.compile(rb"\[\[run:([A-Za-z0-9_.-]+)\]\]")
_LENGTH_RE = re.compile(r"(?im)^content-length:\s*(\d+)\s*$")
SUBMIT_MARKER = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


class BenchServer:
    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.step: dict[str, int] = defaultdict(int)
        self.times: dict[str, list[list[float]]] = defaultdict(list)
        self.n_requests = 0

    # -- episode -------------------------------------------------------------------------
    def reply(self, path: str, run: str) -> dict:
        parts = path.strip("/").split("/")
        final, tool, steps = parts[0], parts[1], int(parts[2])
        i = self.step[run]
        self.step[run] = i + 1
        if i < steps:
            args = {"command": f"echo step-{i}"} if tool == "bash" else {"text": f"step-{i}"}
            return _tool_reply(tool, args, i)
        if final == "bash-submit":
            return _tool_reply("bash", {"command": f"echo {SUBMIT_MARKER}"}, i)
        if final == "final_answer":
            return _tool_reply("final_answer", {"answer": "done"}, i)
        return _completion({"role": "assistant", "content": "done"}, "stop")

    # -- HTTP ----------------------------------------------------------------------------
    def respond(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str | None]:
        """(status, JSON payload, run id or None) for one request."""
        if method == "GET" and path.startswith("/stats"):
            return 200, json.dumps({"runs": self.times, "requests": self.n_requests}).encode(), None
        if method == "POST" and path.startswith("/reset"):
            self.step.clear()
            self.times.clear()
            self.n_requests = 0
            return 200, b"{}", None
        if method == "POST" and path.endswith("/chat/completions"):
            self.n_requests += 1
            m = _RUN_RE.search(body)
            run = m.group(1).decode() if m else "default"
            try:
                return 200, json.dumps(self.reply(path.split("/v1/")[0], run)).encode(), run
            except (ValueError, IndexError) as e:
                return 404, json.dumps({"error": {"message": str(e)}}).encode(), run
        return 404, b'{"error": {"message": "not found"}}', None


class _Connection(asyncio.Protocol):
    """One keep-alive connection, parsed straight off the transport: the harness should spend as
    little of the machine's CPU as it can, since the framework under test shares it."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request is waiting out its latency; the next one stays buffered
        self.t_first = 0.0  # when the first byte of the request being read arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.buf:
            self.t_first = time.monotonic()
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).decode("latin-1")
        m_len = _LENGTH_RE.search(head)
        length = int(m_len.group(1)) if m_len else 0
        if len(self.buf) < end + 4 + length:
            return
        t_recv = self.t_first
        body = bytes(self.buf[end + 4:end + 4 + length])
        del self.buf[:end + 4 + length]
        self.t_first = time.monotonic()  # any bytes left belong to a pipelined next request
        method, path, _ = head.partition("\r\n")[0].split(" ", 2)
        status, payload, run = self.server.respond(method, path, body)
        latency = self.server.latency_s if run is not None and status == 200 else 0.0
        self.busy = True
        if latency:
            asyncio.get_running_loop().call_later(latency, self._send, status, payload, run, t_recv)
        else:
            self._send(status, payload, run, t_recv)

    def _send(self, status: int, payload: bytes, run: str | None, t_recv: float) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: keep-alive\r\n\r\n" % (status, len(payload))
                             + payload)
        if run is not None:
            self.server.times[run].append([t_recv, time.monotonic()])
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _tool_reply(name: str, args: dict, i: int) -> dict:
    call = {"id": f"call_{i}_{name}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}
    return _completion({"role": "assistant", "content": "", "tool_calls": [call]}, "tool_calls")


def _completion(message: dict, finish: str) -> dict:
    return {"id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
            "model": "deepseek-chat", "system_fingerprint": "bench",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


async def _main(port: int, latency: float) -> None:
    srv = BenchServer(latency)
    server = await asyncio.get_running_loop().create_server(lambda: _Connection(srv), "127.0.0.1", port,
                                                            backlog=1024)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    a = ap.parse_args(argv)
    try:
        asyncio.run(_main(a.port, a.latency))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
