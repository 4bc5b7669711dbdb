"""A server whose TLS certificate does not verify is a permanent error: one attempt, a one-line
message naming the certificate problem (issue 18), not five retries."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from agentkit.errors import ModelError
from agentkit.messages import UserMessage
from agentkit.models.openai_compat import OpenAICompatible

MSGS = [UserMessage(content="hi")]


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """A loopback HTTPS listener with a certificate made here (so no CA trusts it); yields its
    base URL and the list of connections it accepted."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.settimeout(2)
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass  # the client rejects the certificate mid-handshake

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/v1", accepted
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_certificate_error_is_not_retried(self_signed_server, monkeypatch, stream) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)
    url, accepted = self_signed_server
    m = OpenAICompatible("m", base_url=url, api_key="sk-x", max_retries=5)
    started = time.monotonic()
    try:
        with pytest.raises(ModelError) as info:
            if stream:
                [d async for d in m.stream(MSGS)]
            else:
                await m.complete(MSGS)
    finally:
        await m.aclose()
    err = info.value
    assert time.monotonic() - started < 5 and len(accepted) == 1  # one attempt, no backoff
    assert err.retryable is False
    text = str(err)
    assert "\n" not in text and "certificate" in text and "self-signed" in text, text
    assert url in text and "SSL_CERT_FILE" in text and "attempt" not in text
