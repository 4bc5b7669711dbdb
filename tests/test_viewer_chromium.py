"""The viewer page in real headless Chromium, driven over the DevTools protocol (``--remote-debugging-pipe``):
every step renders, folding and the toolbar work, nothing is loaded from outside, and a screenshot
is kept under ``tests/artifacts/``."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pathlib
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agentkit.render.html import render_html

pytestmark = pytest.mark.chromium

ARTIFACTS = pathlib.Path(__file__).parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("AGENTKIT_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (AGENTKIT_REQUIRE_CHROMIUM=1) but not installed: apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


class Browser:
    """A minimal DevTools-protocol client over Chromium's pipe transport (NUL-separated JSON)."""

    def __init__(self, exe: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="agentkit-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        # Move the child's ends above 9 so the redirections below cannot clobber fds 3 and 4 themselves.
        cmd_r, res_w = (self._high(fd) for fd in (cmd_r, res_w))
        # bash (dash cannot name fds above 9) moves our pipe ends to fds 3 (commands in) and 4 (replies
        # out), where Chromium wants them.
        script = f'exec "$0" "$@" 3<&{cmd_r} 4>&{res_w} {cmd_r}<&- {res_w}>&-'
        self.proc = subprocess.Popen(["bash", "-c", script, exe, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], pass_fds=(cmd_r, res_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    @staticmethod
    def _high(fd: int) -> int:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout: float = 60.0) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            ev = self._read(timeout)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._res_r], [], [], left)
            if ready:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk:
                    raise ConnectionError("chromium closed the pipe")
                self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def open(self, url: str, width: int = 1280, height: int = 900) -> float:
        """Open ``url`` in a new page; returns the seconds until its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                          "mobile": False})
        t0 = time.monotonic()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        return time.monotonic() - t0

    def js(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: pathlib.Path) -> bytes:
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=10)
        except Exception:  # noqa: BLE001 - it may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._res_r)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser(_chromium())
    try:
        yield b
    finally:
        b.close()


def _page(tmp_path: pathlib.Path, traj: pathlib.Path) -> str:
    page = tmp_path / (traj.stem + ".html")
    page.write_text(render_html(traj), encoding="utf-8")
    return page.resolve().as_uri()


def test_500_step_page_renders_every_step_and_folds(browser: Browser, trajectory_file, tmp_path) -> None:
    traj = trajectory_file(500, long_observation=4000)
    t_render = time.monotonic()
    url = _page(tmp_path, traj)
    t_render = time.monotonic() - t_render
    load_s = browser.open(url)
    assert browser.js("document.body.dataset.ready") == "1"  # the page script ran without errors
    counts = browser.js("""({assistant: document.querySelectorAll('.card.role-assistant').length,
        tool: document.querySelectorAll('.card.role-tool').length,
        steps: Array.from({length: 500}, (_, i) => !!document.getElementById('step-' + (i + 1))).every(Boolean),
        resources: performance.getEntriesByType('resource').length,
        tokens: document.querySelectorAll('.tok').length})""")
    assert counts["assistant"] == 501 and counts["tool"] == 500 and counts["steps"] is True
    assert counts["resources"] == 0  # nothing fetched: no external assets
    assert counts["tokens"] > 500  # special tokens highlighted (raw turns and the prompt)

    # folding: the long observation of step 1 is folded; a click on its summary unfolds it
    fold = "document.querySelector('#step-1').nextElementSibling.querySelector('details.fold')"
    browser.js(f"{fold}.scrollIntoView()")
    assert browser.js(f"{fold}.open") is False
    assert browser.js(f"{fold}.querySelector('pre').checkVisibility()") is False
    closed_h = browser.js(f"{fold}.getBoundingClientRect().height")
    browser.js(f"{fold}.querySelector('summary').click()")
    assert browser.js(f"{fold}.open") is True
    assert browser.js(f"{fold}.querySelector('pre').checkVisibility()") is True
    assert browser.js(f"{fold}.getBoundingClientRect().height") > closed_h + 100  # 4,000 characters unfolded
    browser.js(f"{fold}.querySelector('summary').click()")
    assert browser.js(f"{fold}.open") is False
    assert browser.js(f"{fold}.getBoundingClientRect().height") == closed_h

    # reasoning is collapsible the same way
    reasoning = "document.querySelector('#step-2 details.reasoning')"
    browser.js(f"{reasoning}.querySelector('summary').click()")
    assert browser.js(f"{reasoning}.open") is True

    # toolbar: expand all, collapse all, hide a role, text filter
    browser.js("document.querySelector('[data-act=expand]').click()")
    assert browser.js("Array.from(document.querySelectorAll('main details')).every(d => d.open)") is True
    browser.js("document.querySelector('[data-act=collapse]').click()")
    assert browser.js("Array.from(document.querySelectorAll('main details')).some(d => d.open)") is False
    browser.js("const b = document.querySelector('input[data-role=tool]'); b.click();")
    assert browser.js("getComputedStyle(document.querySelector('.card.role-tool')).display") == "none"
    browser.js("document.querySelector('input[data-role=tool]').click()")
    assert browser.js("getComputedStyle(document.querySelector('.card.role-tool')).display") != "none"
    browser.js("const f = document.getElementById('filter'); f.value = 'echo step 417 '; "
               "f.dispatchEvent(new Event('input'))")
    visible = browser.js("new Promise(r => setTimeout(() => r(Array.from(document.querySelectorAll('main .card'))"
                         ".filter(c => !c.classList.contains('hidden')).map(c => c.id)), 400))")
    assert visible == ["step-417"]
    browser.js("const g = document.getElementById('filter'); g.value = ''; g.dispatchEvent(new Event('input'))")

    browser.js("window.scrollTo(0, 0)")
    png = browser.screenshot(ARTIFACTS / "viewer-500-steps.png")
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    metrics = {"steps": 500, "html_bytes": len(pathlib.Path(url[7:]).read_bytes()), "render_html_s": round(t_render, 3),
               "chromium_load_s": round(load_s, 3)}
    (ARTIFACTS / "viewer-metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print("viewer metrics:", metrics)


def test_search_run_sources_and_citations(browser: Browser, trajectory_file, tmp_path) -> None:
    url = _page(tmp_path, trajectory_file(4, search=True, compaction=True))
    browser.open(url)
    rows = browser.js("Array.from(document.querySelectorAll('table.sources tbody tr')).map(r => "
                      "[r.id, r.querySelector('a') ? r.querySelector('a').href : null])")
    assert rows == [["source-1", "https://example.org/1"], ["source-2", "https://example.org/2?a=1&b=%3C2%3E"],
                    ["source-3", None]]  # a javascript: URL is never a link
    assert browser.js("document.querySelector('#end a.cite').getAttribute('href')") == "#source-1"
    assert browser.js("document.querySelectorAll('.card.kind-compaction').length") == 1
    assert browser.js("document.querySelector('h1').textContent") == "Fix the bug <b>now</b> & report"
    assert browser.js("document.querySelectorAll('h1 b').length") == 0  # task text is escaped, not markup
    browser.screenshot(ARTIFACTS / "viewer-search.png")
