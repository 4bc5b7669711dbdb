"""A loopback HTTP server that is slow on purpose, for the "every wait has a deadline" tests.

``/hang`` reads the request and never answers; ``/trickle`` sends a 200 with a long body one byte
every ``interval`` seconds (each read succeeds, so a per-read timeout never fires); ``/hop/N``
waits ``interval`` seconds, then redirects to ``/hop/N+1``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest


class SlowServer:
    def __init__(self, interval: float = 0.2, body_bytes: int = 500) -> None:
        self.interval = interval
        self.body_bytes = body_bytes
        self.paths: list[str] = []
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base_url + path

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1].decode()
            self.paths.append(path)
            try:
                if path.startswith("/hang"):
                    self.stop.wait()
                elif path.startswith("/trickle"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % self.body_bytes)
                    for _ in range(self.body_bytes):
                        if self.stop.wait(self.interval):
                            return
                        conn.sendall(b"x")
                elif path.startswith("/hop/"):
                    if self.stop.wait(self.interval):
                        return
                    nxt = int(path.rsplit("/", 1)[1]) + 1
                    conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /hop/%d\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n" % nxt)
                else:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:  # the client gave up: that is the point
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    """A started ``SlowServer`` (one byte or one hop every 0.2 s)."""
    server = SlowServer()
    try:
        yield server
    finally:
        server.close()
