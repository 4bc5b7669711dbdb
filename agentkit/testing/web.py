"""A small HTTP server on 127.0.0.1 for tests, demos and offline examples.

It serves whatever the caller registers (HTML, PDF, JSON, redirects, slow or huge bodies) from a
background thread, so async code under test can reach it with a real socket. It records every
request so a test can check what the client actually sent.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

__all__ = ["LocalWebServer", "Request", "Response", "make_pdf"]


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        return parse_qs(self.body.decode("utf-8", "replace"))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up early (a size cap, a timeout) is normal here, not worth a traceback."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalWebServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with registered routes.

    Use it as a context manager (``with LocalWebServer() as web: ...``) or call ``start``/``stop``.
    Unknown paths answer 404.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- routes ---------------------------------------------------------------------------------
    def route(self, path: str, handler: Handler) -> None:
        """Answer ``path`` (query ignored) with whatever ``handler(request)`` returns."""
        self._routes[path] = handler

    def add(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8",
            status: int = 200, headers: dict[str, str] | None = None) -> str:
        """Serve a fixed body at ``path``; returns the full URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        hdrs = {"Content-Type": content_type, **(headers or {})}
        self.route(path, lambda _req: Response(status, data, dict(hdrs)))
        return self.url(path)

    def add_html(self, path: str, html: str | bytes, charset: str = "utf-8") -> str:
        """Serve ``html`` at ``path``; returns its URL."""
        return self.add(path, html, f"text/html; charset={charset}")

    def add_pdf(self, path: str, pdf: bytes) -> str:
        """Serve a PDF at ``path``; returns its URL."""
        return self.add(path, pdf, "application/pdf")

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """Redirect ``path`` to ``location`` (absolute URL or path)."""
        self.route(path, lambda _req: Response(status, b"", {"Location": location}))
        return self.url(path)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port it listens on (once started)."""
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The URL of ``path`` on this server."""
        if self._server is None:
            return path
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def start(self) -> "LocalWebServer":
        """Serve from a background thread; returns the server."""
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k: v for k, v in self.headers.items()}, body)
                with owner._lock:
                    owner.requests.append(req)
                handler = owner._routes.get(parts.path)
                resp = handler(req) if handler else Response(404, b"not found", {"Content-Type": "text/plain"})
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            do_GET = do_POST = do_HEAD = _serve

        self._server = _QuietServer((self._host, self._port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="LocalWebServer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "LocalWebServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], title: str = "") -> bytes:
    """A valid PDF whose pages hold the given lines of (Latin-1) text, for fetcher tests.

    Written by hand (no PDF library writes text) with a correct cross-reference table, so real
    PDF readers such as pypdf parse it without repair.
    """
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1 catalog, 2 pages tree, 3 font, 4 info, then (page, content) pairs
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    objects.append(f"<< /Title ({_pdf_escape(title)}) /Producer (agentkit.testing) >>".encode("latin-1"))
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 790 Td"]
        for line in lines:
            ops.append(f"({_pdf_escape(line)}) Tj T*")
        ops.append("ET")
        stream = zlib.compress("\n".join(ops).encode("latin-1"))
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {6 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" /Filter /FlateDecode >>\nstream\n"
                       + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{num} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 4 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)
