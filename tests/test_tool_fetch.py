"""The fetch tool against real pages served from 127.0.0.1, and every address it must refuse."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.testing.web import LocalWebServer, make_pdf
from agentkit.tools.base import ToolContext
from agentkit.tools.fetch import FetchTool, split_pages
from agentkit.tools.netguard import AddressRefused, AllowList, address_problem
from tests.fixtures_slow import SlowServer

ARTICLE = """<!doctype html><html><head><title>Tidal Locking Explained</title>
<meta name="author" content="Ada Lovelace"><meta name="date" content="2023-07-14"></head>
<body><nav><a href="/">Home</a> <a href="/about">About us</a></nav>
<article><h1>Tidal Locking Explained</h1>
<p>Tidal locking happens when a moon's rotation period matches its orbital period, so the same face
always points toward the planet it orbits.</p>
<h2>Why it happens</h2>
<p>Gravity stretches the moon into a slight bulge, and friction inside the body slowly drains its
spin until the bulge stays aligned with the planet.</p>
<table><tr><th>Body</th><th>Locked to</th></tr><tr><td>Moon</td><td>Earth</td></tr></table>
</article><footer>Copyright 2024 Example Org. All rights reserved.</footer></body></html>"""


@pytest.fixture
def ctx() -> ToolContext:
    return ToolContext()


@pytest.fixture
async def fetch():
    tool = FetchTool(allow=["127.0.0.1"])
    yield tool
    await tool.aclose()


async def test_html_becomes_markdown_with_metadata(web_server: LocalWebServer, fetch: FetchTool,
                                                   ctx: ToolContext) -> None:
    url = web_server.add_html("/tidal", ARTICLE)
    obs = await fetch({"url": url}, ctx)
    assert not obs.is_error, obs.text
    assert obs.text.startswith("[citation:1] Tidal Locking Explained\n")
    assert f"URL: {url}" in obs.text
    assert "Author: Ada Lovelace" in obs.text and "Date: 2023-07-14" in obs.text
    assert "## Why it happens" in obs.text
    assert "| Moon | Earth |" in obs.text
    assert "same face\nalways points" in obs.text or "same face always points" in obs.text
    assert "All rights reserved" not in obs.text  # boilerplate removed
    assert ctx.sources.get(1).url == url and ctx.sources.get(1).title == "Tidal Locking Explained"


async def test_sends_browser_user_agent(web_server: LocalWebServer, fetch: FetchTool, ctx: ToolContext) -> None:
    url = web_server.add_html("/ua", ARTICLE)
    await fetch({"url": url}, ctx)
    ua = web_server.requests[-1].headers["User-Agent"]
    assert ua.startswith("Mozilla/5.0") and "Chrome/" in ua


async def test_non_utf8_bytes_are_decoded_by_declared_charset(web_server: LocalWebServer, fetch: FetchTool,
                                                               ctx: ToolContext) -> None:
    text = "Der Bär läuft über die Straße und grüßt höflich jeden Nachbarn, dem er begegnet, mit Würde."
    html = (f'<html><head><meta charset="windows-1252"><title>Bär</title></head><body><article>'
            f"<p>{text}</p><p>{text}</p></article></body></html>").encode("cp1252")
    # The header names no charset: the page's own <meta> must win, which only works on bytes.
    url = web_server.add("/latin", html, content_type="text/html")
    obs = await fetch({"url": url}, ctx)
    assert not obs.is_error
    assert text in obs.text


async def test_pdf_becomes_text(web_server: LocalWebServer, fetch: FetchTool, ctx: ToolContext) -> None:
    pdf = make_pdf([["Orbital resonance report", "Io, Europa and Ganymede are in a 1:2:4 resonance."],
                    ["Second page: Laplace resonance keeps them locked."]], title="Resonance Report")
    url = web_server.add_pdf("/report.pdf", pdf)
    obs = await fetch({"url": url}, ctx)
    assert not obs.is_error, obs.text
    assert obs.data["kind"] == "pdf"
    assert "[citation:1] Resonance Report" in obs.text
    assert "1:2:4 resonance" in obs.text and "Laplace resonance keeps them locked" in obs.text


async def test_long_page_is_paged_without_losing_text(web_server: LocalWebServer, ctx: ToolContext) -> None:
    paras = [f"Paragraph {i} says that fact number {i} is worth remembering for the quiz later on." for i in range(120)]
    html = "<html><head><title>Long</title></head><body><article>" + "".join(
        f"<p>{p}</p>" for p in paras) + "</article></body></html>"
    url = web_server.add_html("/long", html)
    tool = FetchTool(allow=["127.0.0.1"], page_chars=2000)
    try:
        first = await tool({"url": url}, ctx)
        total = first.data["pages"]
        assert total > 2
        assert f"Page 1 of {total}" in first.text and "page=2 to continue" in first.text
        bodies = [first.text]
        for p in range(2, total + 1):
            obs = await tool({"url": url, "page": p}, ctx)
            assert not obs.is_error and f"Page {p} of {total}" in obs.text
            bodies.append(obs.text)
        assert "End of document" in bodies[-1]
        joined = "\n".join(bodies)
        for p in paras:
            assert p in joined
        assert len([r for r in web_server.requests if r.path == "/long"]) == 1  # pages come from the cache
        beyond = await tool({"url": url, "page": total + 1}, ctx)
        assert beyond.is_error and f"only {total} page" in beyond.text
    finally:
        await tool.aclose()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=400), st.integers(min_value=1, max_value=60))
def test_split_pages_is_lossless(text: str, size: int) -> None:
    pages = split_pages(text, size)
    assert "".join(pages) == text
    assert all(len(p) <= size for p in pages)
    assert all(p for p in pages) or text == ""


async def test_binary_content_is_refused(web_server: LocalWebServer, fetch: FetchTool, ctx: ToolContext) -> None:
    url = web_server.add("/img.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="image/png")
    obs = await fetch({"url": url}, ctx)
    assert obs.is_error and "image/png" in obs.text


async def test_http_error_is_an_observation(web_server: LocalWebServer, fetch: FetchTool, ctx: ToolContext) -> None:
    obs = await fetch({"url": web_server.url("/missing")}, ctx)
    assert obs.is_error and "HTTP 404" in obs.text and "try another source" in obs.text


async def test_redirects_are_followed_up_to_a_limit(web_server: LocalWebServer, ctx: ToolContext) -> None:
    target = web_server.add_html("/final", ARTICLE)
    start = web_server.redirect("/start", "/final")
    tool = FetchTool(allow=["127.0.0.1"], max_redirects=2)
    try:
        obs = await tool({"url": start}, ctx)
        assert not obs.is_error and obs.data["final_url"] == target
        assert f"redirected from {start}" in obs.text
        for i in range(4):
            web_server.redirect(f"/loop{i}", f"/loop{i + 1}")
        looped = await tool({"url": web_server.url("/loop0")}, ctx)
        assert looped.is_error and "Too many redirects" in looped.text
    finally:
        await tool.aclose()


async def test_download_size_is_capped(web_server: LocalWebServer, ctx: ToolContext) -> None:
    url = web_server.add("/big.txt", b"x" * 5000, content_type="text/plain")
    tool = FetchTool(allow=["127.0.0.1"], max_bytes=1000)
    try:
        obs = await tool({"url": url}, ctx)
        assert not obs.is_error
        assert obs.text.count("x") >= 1000 and "x" * 1001 not in obs.text
        assert "download stopped" in obs.text
    finally:
        await tool.aclose()


async def test_allow_list_also_comes_from_run_settings(web_server: LocalWebServer) -> None:
    url = web_server.add_html("/s", ARTICLE)
    tool = FetchTool()
    try:
        refused = await tool({"url": url}, ToolContext())
        assert refused.is_error
        ok = await tool({"url": url}, ToolContext(settings={"fetch_allow": ["127.0.0.0/8"]}))
        assert not ok.is_error
    finally:
        await tool.aclose()


# ------------------------------------------------------------------------------- total deadline
async def test_trickling_page_stops_at_the_total_deadline(slow_server: SlowServer) -> None:
    """One byte every 0.2 s never trips the per-read timeout: only a total deadline ends it."""
    assert FetchTool().deadline == 30.0
    tool = FetchTool(allow=["127.0.0.1"], deadline=1.0)
    try:  # the outer limit only keeps a hanging fetch from hanging the test
        obs = await asyncio.wait_for(tool({"url": slow_server.url("/trickle")}, ToolContext()), 15)
    finally:
        await tool.aclose()
    assert obs.is_error and "Gave up" in obs.text and "after 1s" in obs.text and "try another source" in obs.text.lower()
    assert obs.data == {"url": slow_server.url("/trickle")}


async def test_deadline_counts_redirect_hops_together(slow_server: SlowServer) -> None:
    """Each hop is quick enough alone; the deadline is for the whole chain."""
    tool = FetchTool(allow=["127.0.0.1"], deadline=1.5, max_redirects=30)
    try:
        obs = await asyncio.wait_for(tool({"url": slow_server.url("/hop/0")}, ToolContext()), 15)
    finally:
        await tool.aclose()
    assert obs.is_error and "Gave up" in obs.text and "redirects included" in obs.text
    assert len(slow_server.paths) >= 2  # it was following the hops when time ran out


# ------------------------------------------------------------------------------- refused addresses
@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:{port}/page", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://192.168.1.1/admin", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]:{port}/page", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/page", "loopback"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd00::1]/", "private"),
    ("http://224.0.0.1/", "multicast"),
    ("http://0.0.0.0:{port}/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://localhost:{port}/page", "loopback"),
])
async def test_refused_without_allow_list(web_server: LocalWebServer, url: str, reason: str) -> None:
    web_server.add_html("/page", ARTICLE)
    tool = FetchTool()
    ctx = ToolContext()
    try:
        obs = await tool({"url": url.format(port=web_server.port)}, ctx)
    finally:
        await tool.aclose()
    assert obs.is_error and obs.data["refused"]
    assert f"{reason} address" in obs.text and "--fetch-allow" in obs.text
    assert not [r for r in web_server.requests if r.path == "/page"]  # nothing reached the server
    assert len(ctx.sources) == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/",
                                 "javascript:alert(1)"])
async def test_non_http_schemes_are_refused(url: str) -> None:
    tool = FetchTool()
    obs = await tool({"url": url}, ToolContext())
    assert obs.is_error and "only http:// and https://" in obs.text


@pytest.mark.parametrize("private", ["http://10.0.0.1/secret", "http://169.254.169.254/latest/meta-data/",
                                     "http://[::1]/x"])
async def test_redirect_from_allowed_host_to_private_is_refused(web_server: LocalWebServer,
                                                                fetch: FetchTool, private: str) -> None:
    start = web_server.redirect("/jump", private)
    obs = await fetch({"url": start}, ToolContext())
    assert obs.is_error and obs.data["refused"]
    assert "address" in obs.text and "Refused" in obs.text


async def test_connect_time_guard_refuses_even_without_the_precheck(web_server: LocalWebServer) -> None:
    """The transport itself checks the address, so a rebinding name cannot slip past the URL check."""
    url = web_server.add_html("/p", ARTICLE)
    tool = FetchTool()
    try:
        client = tool.client(AllowList())
        with pytest.raises(AddressRefused, match="loopback"):
            await client.get(url)
        assert not web_server.requests
    finally:
        await tool.aclose()


@pytest.mark.parametrize(("ip", "expected"), [
    ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("127.0.0.2", "loopback"), ("172.16.5.4", "private"),
    ("100.64.0.1", "non-public"), ("::", "unspecified"), ("ff02::1", "multicast"),
    ("::ffff:10.0.0.1", "private"), ("2002:7f00:0001::", "loopback"),
])
def test_address_classification(ip: str, expected: str | None) -> None:
    assert address_problem(ipaddress.ip_address(ip)) == expected


def test_allow_list_entries() -> None:
    allow = AllowList(["127.0.0.1", "10.1.0.0/16", "[::1]", "*.corp.example", "wiki.local"])
    assert allow.allows_ip(ipaddress.ip_address("127.0.0.1"))
    assert allow.allows_ip(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert allow.allows_ip(ipaddress.ip_address("10.1.200.3"))
    assert not allow.allows_ip(ipaddress.ip_address("10.2.0.1"))
    assert allow.allows_ip(ipaddress.ip_address("::1"))
    assert allow.allows_host("docs.corp.example") and allow.allows_host("WIKI.local.")
    assert not allow.allows_host("corp.example.evil.com")


def test_fetch_loses_nothing_trafilatura_finds() -> None:
    """Quality regression on the generated benchmark pages (bench/extraction.py): the fetch path
    (bytes in, markdown, paging) must find every passage trafilatura alone finds."""
    import importlib.util
    import pathlib
    import sys

    path = pathlib.Path(__file__).resolve().parents[1] / "bench" / "extraction.py"
    spec = importlib.util.spec_from_file_location("bench_extraction", path)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.modules.pop(spec.name, None)
    res = bench.run(per_kind=2, seed=7)
    ours = res["quality"]["fetch, HTML only (markdown-stripped)"]
    alone = res["quality"]["trafilatura.extract alone, HTML only"]
    assert ours["recall"] >= alone["recall"]
    assert res["quality"]["fetch (markdown-stripped)"]["recall"] == 1.0  # paging and PDFs included
    assert res["documents_spanning_several_fetch_pages"] >= 1


# ------------------------------------------------------------------------------- HTTPS and HTTP/2
class _H2Server:
    """A minimal HTTPS server on 127.0.0.1 speaking HTTP/2 (ALPN) with the ``h2`` state machine."""

    def __init__(self, cert: str, key: str, body: bytes) -> None:
        import socket
        import ssl
        import threading

        self.body, self.protocols, self.paths = body, [], []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(raw,), daemon=True).start()

    def _handle(self, raw) -> None:
        import h2.config
        import h2.connection
        import h2.events

        try:
            conn_sock = self.ctx.wrap_socket(raw, server_side=True)
        except OSError:  # e.g. the client refused our certificate
            raw.close()
            return
        self.protocols.append(conn_sock.selected_alpn_protocol())
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        try:
            conn_sock.sendall(conn.data_to_send())
            while data := conn_sock.recv(65535):
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        headers = {k.decode() if isinstance(k, bytes) else k: v for k, v in ev.headers}
                        path = headers[":path"]
                        self.paths.append(path.decode() if isinstance(path, bytes) else path)
                        conn.send_headers(ev.stream_id, [(":status", "200"),
                                                         ("content-type", "text/html; charset=utf-8"),
                                                         ("content-length", str(len(self.body)))])
                        conn.send_data(ev.stream_id, self.body, end_stream=True)
                conn_sock.sendall(conn.data_to_send())
        except OSError:
            pass
        finally:
            conn_sock.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_cert(tmp_path):
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


async def test_https_over_http2_with_certificate_checks(tls_cert) -> None:
    import ssl

    cert, key = tls_cert
    server = _H2Server(cert, key, ARTICLE.encode())
    trusted = ssl.create_default_context(cafile=cert)
    tool = FetchTool(allow=["127.0.0.1"], verify=trusted)
    untrusting = FetchTool(allow=["127.0.0.1"])  # system CAs only: the self-signed cert must fail
    try:
        obs = await tool({"url": f"https://127.0.0.1:{server.port}/tidal"}, ToolContext())
        assert not obs.is_error, obs.text
        assert "## Why it happens" in obs.text
        assert server.protocols[-1] == "h2" and server.paths[-1] == "/tidal"
        bad = await untrusting({"url": f"https://127.0.0.1:{server.port}/tidal"}, ToolContext())
        assert bad.is_error and "Could not fetch" in bad.text
    finally:
        await tool.aclose()
        await untrusting.aclose()
        server.close()
