"""Issue 14, the editor: what an untrusted model (or a process it started) can do to the file API.

- a folder swapped for a symlink while the editor works must never let a read or write leave the
  workspace (both resolvers: openat2 and the O_NOFOLLOW walk);
- FIFOs and sockets are refused, never blocked on;
- a huge (sparse) file is never read whole;
- the near-miss hint of ``str_replace`` does bounded work, off the event loop.

Everything happens in pytest's temporary folders; the "outside" folder is one of them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agentkit.errors import SandboxError
from agentkit.sandboxes import safefs
from agentkit.sandboxes.local import LocalSandbox
from agentkit.tools.base import ToolContext
from agentkit.tools.editor import StrReplaceEditor


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each way safefs resolves paths: the kernel's openat2, and the by-hand walk."""
    if request.param == "walk":
        monkeypatch.setattr(safefs, "_openat2_ok", False, raising=False)
    else:
        fd = os.open("/", os.O_PATH)
        try:
            if not safefs._have_openat2(fd):
                pytest.skip("openat2 is not available on this kernel")
        finally:
            os.close(fd)
    yield request.param


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(workspace, outside): siblings in a temporary folder; outside holds files that must stay unseen."""
    ws, out = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    out.mkdir()
    (out / "secret.txt").write_text("SECRET\n")
    (out / "target.txt").write_text("hello outside\n")
    return ws, out


@pytest.fixture
async def sb(dirs: tuple[Path, Path]) -> AsyncIterator[LocalSandbox]:
    """A LocalSandbox on the workspace; the file API needs no shell, so none is started."""
    box = LocalSandbox(workspace=dirs[0], isolate=False)
    try:
        yield box
    finally:
        await box.close()


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>", p.lstat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


# ----- the swap race ------------------------------------------------------------------------------
SWAPPER = r"""
import ctypes, os, sys
d, alts = sys.argv[1], sys.argv[2:]
libc = ctypes.CDLL(None, use_errno=True)
def exchange(a, b):  # renameat2(RENAME_EXCHANGE): d is always either the folder or a symlink
    if libc.renameat2(-100, a.encode(), -100, b.encode(), 2) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")
print("ready", flush=True)
while True:
    for alt in alts:
        exchange(d, alt)
        exchange(d, alt)
"""


async def test_swapping_a_folder_for_a_symlink_never_escapes(resolver: str, dirs: tuple[Path, Path],
                                                             sb: LocalSandbox) -> None:
    ws, out = dirs
    (ws / "d").mkdir()
    (ws / "d" / "target.txt").write_text("hello inside\n")
    os.symlink(out, ws / "d.abs")  # /tmp/.../outside
    os.symlink("../outside", ws / "d.rel")  # the same folder, by a relative link
    before = _snapshot(out)
    ed, ctx = StrReplaceEditor(), ToolContext(sandbox=sb)
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(ws / "d"), str(ws / "d.abs"), str(ws / "d.rel")],
                               stdout=subprocess.PIPE, text=True)
    texts: list[str] = []
    leaked: list[bytes] = []
    crashes: list[BaseException] = []  # checked last: an escape is the worse failure
    rounds = 0
    try:
        assert swapper.stdout is not None and swapper.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline or rounds < 20:
            rounds += 1
            for args in ({"command": "create", "path": f"d/new{rounds}.txt", "file_text": "planted\n"},
                         {"command": "str_replace", "path": "d/target.txt", "old_str": "hello", "new_str": "hello"},
                         {"command": "view", "path": "d/target.txt"},
                         {"command": "view", "path": "d/secret.txt"},
                         {"command": "view", "path": "d"}):
                try:
                    texts.append((await ed(args, ctx)).text)
                except Exception as e:  # noqa: BLE001 - the tool must not raise, but find escapes first
                    crashes.append(e)
            for call in (sb.read_file("d/secret.txt"), sb.read_file("d/target.txt"),
                         sb.write_file(f"d/api{rounds}/x.txt", "planted\n"), sb.list_dir("d")):
                try:
                    got = await call
                except (OSError, SandboxError):
                    continue
                if got is not None:
                    leaked.append(repr(got).encode())
    finally:
        swapper.kill()
        swapper.wait()
    assert any("outside the workspace" in t for t in texts)  # the attack was on: some opens met the symlink
    assert _snapshot(out) == before, "something was written outside the workspace"
    seen = "\n".join(texts) + "\n".join(x.decode() for x in leaked)
    assert "SECRET" not in seen and "secret.txt" not in "\n".join(x.decode() for x in leaked)
    assert "hello outside" not in seen
    assert not any("secret.txt" in t for t in texts if "up to 2 levels deep" in t)
    real = ws / "d" if (ws / "d").is_dir() and not (ws / "d").is_symlink() else next(
        p for p in (ws / "d.abs", ws / "d.rel") if not p.is_symlink())
    assert (real / "target.txt").read_text() == "hello inside\n"
    assert not crashes, crashes[:3]


# ----- symlink semantics --------------------------------------------------------------------------
async def test_symlinks_inside_are_followed_and_outside_refused(resolver: str, dirs: tuple[Path, Path],
                                                                sb: LocalSandbox) -> None:
    ws, out = dirs
    (ws / "src").mkdir()
    (ws / "src" / "a.txt").write_text("A")
    os.symlink(ws / "src", ws / "abs-src")  # absolute, into the workspace
    os.symlink("src/a.txt", ws / "rel-a")
    os.symlink("../src/a.txt", ws / "src" / "up-a")
    os.symlink("src", ws / "srclink")
    assert await sb.read_file("abs-src/a.txt") == b"A"
    assert await sb.read_file(f"{ws}/abs-src/a.txt") == b"A"
    assert await sb.read_file("rel-a") == b"A"
    assert await sb.read_file("src/up-a") == b"A"
    assert await sb.read_file("srclink/../src/a.txt") == b"A"  # `..` from the folder the link led to
    await sb.write_file("abs-src/new/deep.txt", "N")  # parents made beneath, through the link
    assert (ws / "src" / "new" / "deep.txt").read_text() == "N"
    assert [e.name for e in await sb.list_dir("srclink")] == ["a.txt", "new", "up-a"]

    os.symlink(out, ws / "out-abs")
    os.symlink("../outside/secret.txt", ws / "out-rel")
    os.symlink("src/../../outside", ws / "out-mid")  # escapes halfway through its target
    os.symlink("/proc/self/root/etc", ws / "magic")
    os.symlink(str(out / "dangling.txt"), ws / "dangling")
    for path in ("out-abs/secret.txt", "out-rel", "out-mid/secret.txt", "magic/hostname", "../outside/secret.txt",
                 "src/../../outside/secret.txt", str(out / "secret.txt")):
        with pytest.raises(SandboxError, match="outside the workspace"):
            await sb.read_file(path)
    for path in ("dangling", "out-abs/made/x.txt", "out-rel"):
        with pytest.raises(SandboxError, match="outside the workspace"):
            await sb.write_file(path, "x")
    with pytest.raises(SandboxError, match="outside the workspace"):
        await sb.list_dir("out-mid")
    assert sorted(p.name for p in out.iterdir()) == ["secret.txt", "target.txt"]
    assert (out / "secret.txt").read_text() == "SECRET\n"

    os.symlink("loop2", ws / "loop1")
    os.symlink("loop1", ws / "loop2")
    with pytest.raises(OSError):
        await sb.read_file("loop1")


# ----- FIFOs and sockets --------------------------------------------------------------------------
def _unblock(fifo: Path) -> None:
    """Release a thread an old, blocking open may have left waiting on the FIFO."""
    for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
        try:
            os.close(os.open(fifo, flags))
        except OSError:
            pass


async def test_fifos_and_sockets_are_refused_without_blocking(resolver: str, dirs: tuple[Path, Path],
                                                              sb: LocalSandbox,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ws, _ = dirs
    fifo = ws / "pipe"
    os.mkfifo(fifo)
    os.symlink("pipe", ws / "pipe-link")
    monkeypatch.chdir(ws)  # a short relative name: unix socket paths are limited to 107 bytes
    server = socket.socket(socket.AF_UNIX)
    server.bind("sock")
    ed, ctx = StrReplaceEditor(), ToolContext(sandbox=sb)
    try:
        for path in ("pipe", "pipe-link", "sock"):
            for args in ({"command": "view", "path": path},
                         {"command": "str_replace", "path": path, "old_str": "a", "new_str": "b"},
                         {"command": "insert", "path": path, "insert_line": 0, "new_str": "b"}):
                obs = await asyncio.wait_for(ed(args, ctx), 10)
                assert obs.is_error and "not a regular file" in obs.text, (path, args, obs.text)
        for path, what in (("pipe", "named pipe"), ("pipe-link", "named pipe"), ("sock", "socket")):
            with pytest.raises(SandboxError, match=what):
                await asyncio.wait_for(sb.read_file(path), 10)
            with pytest.raises(SandboxError, match="not a regular file"):
                await asyncio.wait_for(sb.write_file(path, "x"), 10)
        with pytest.raises(SandboxError, match="named pipe"):
            await asyncio.wait_for(sb.read_lines("pipe", 1, 5), 10)
    finally:
        server.close()
        _unblock(fifo)


# ----- huge files ---------------------------------------------------------------------------------
HUGE = 3 * 2**30


async def test_a_huge_sparse_file_is_never_read_whole(dirs: tuple[Path, Path], sb: LocalSandbox) -> None:
    ws, _ = dirs
    big = ws / "big.log"
    with open(big, "wb") as f:
        f.write("".join(f"line {i}\n" for i in range(1, 101)).encode())
        f.truncate(HUGE)  # sparse: no disk used
    ed, ctx = StrReplaceEditor(), ToolContext(sandbox=sb)
    tracemalloc.start()
    try:
        whole = await ed({"command": "view", "path": "big.log"}, ctx)
        head = await ed({"command": "view", "path": "big.log", "view_range": [1, 10]}, ctx)
        tail = await ed({"command": "view", "path": "big.log", "view_range": [95, 100]}, ctx)
        edit = await ed({"command": "str_replace", "path": "big.log", "old_str": "line 1\n", "new_str": "x"}, ctx)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, f"peak Python memory {peak:,} bytes"
    with pytest.raises(safefs.FileTooLarge):
        await sb.read_file("big.log")
    rest = await sb.read_lines("big.log", 100, -1, max_bytes=4096)
    assert whole.is_error and "3.0 GiB" in whole.text and "view_range" in whole.text and "grep -n" in whole.text
    assert not head.is_error, head.text
    assert "     1\tline 1\n" in head.text and "    10\tline 10" in head.text and "line 11" not in head.text
    assert "only these lines were read" in head.text
    assert "    95\tline 95\n" in tail.text and "   100\tline 100" in tail.text and "line 94" not in tail.text
    assert edit.is_error and "shell" in edit.text
    assert rest.cut and rest.data.startswith(b"line 100\n\x00") and len(rest.data) == 4096


def test_read_lines_ranges(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"a\nb\nc\nd")
    root = str(tmp_path)
    assert safefs.read_lines(root, "f.txt", 2, 3) == (b"b\nc\n", False, None)
    assert safefs.read_lines(root, "f.txt", 3, -1) == (b"c\nd", False, 4)
    assert safefs.read_lines(root, "f.txt", 4, 9) == (b"d", False, 4)
    assert safefs.read_lines(root, "f.txt", 7, 9) == (b"", False, 4)
    assert safefs.read_lines(root, "f.txt", 1, -1, max_bytes=3) == (b"a\nb", True, None)
    (tmp_path / "g.txt").write_bytes(b"x\n" * 3_000_000)  # over two read chunks
    part = safefs.read_lines(root, "g.txt", 2_999_999, -1)
    assert part == (b"x\nx\n", False, 3_000_000)
    with pytest.raises(SandboxError, match="beyond its first"):
        safefs.read_lines(root, "g.txt", 2_999_999, -1, max_scan=1)


# ----- the near-miss hint -------------------------------------------------------------------------
def _module(n_lines: int) -> list[str]:
    out = []
    for i in range(n_lines // 5):
        out += [f"    def method_{i}(self, value, other=None):",
                f"        result = self.compute(value, {i}) + other_{i % 7}",
                f"        if result > {i * 3}:",
                f"            return self.helper_{i % 11}(result, key='item_{i}')",
                ""]
    return out


def _near_miss(lines: list[str], at: int, width: int) -> str:
    old = lines[at:at + width]
    old[3] = old[3].replace("result", "reslt")
    old[width // 2] += "  # changed"
    return "\n".join(old)


def test_near_miss_hint_does_bounded_work_and_still_finds_the_spot() -> None:
    from agentkit.tools.near_match import HINT_BUDGET, near_matches

    lines = _module(1000)  # the case: 40 lines of old_str against a 1,000-line file
    text = "\n".join(lines) + "\n"
    found = near_matches(text, _near_miss(lines, 600, 40))
    assert found.complete and found.work <= HINT_BUDGET
    assert found.similar[0][1] == 601 and found.similar[0][0] > 0.9
    small = near_matches(text, _near_miss(lines, 600, 40), budget=3000)
    assert small.work <= 3000 and not small.complete
    assert small.similar and small.similar[0][1] == 601  # found first, from its verbatim lines
    huge = _module(200_000)
    far = near_matches("\n".join(huge), _near_miss(huge, 150_000, 40))
    assert far.work <= HINT_BUDGET and far.similar[0][1] == 150_001
    spaced = near_matches(text, "\n".join(" " + x.strip() for x in lines[300:310]))
    assert spaced.whitespace_line == 301 and not spaced.similar


@pytest.mark.timeout(60)  # the old hint took minutes on this input
async def test_near_miss_hint_end_to_end(dirs: tuple[Path, Path], sb: LocalSandbox) -> None:
    lines = _module(1000)
    await sb.write_file("mod.py", "\n".join(lines) + "\n")
    obs = await StrReplaceEditor()({"command": "str_replace", "path": "mod.py", "old_str": _near_miss(lines, 600, 40),
                                    "new_str": "x"}, ToolContext(sandbox=sb))
    assert obs.is_error and "The most similar text in the file:\n--- lines 601-639 (99% similar):" in obs.text
    assert "   601\t    def method_120(self, value, other=None):" in obs.text


async def test_the_hint_runs_off_the_event_loop(dirs: tuple[Path, Path], sb: LocalSandbox,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint waits until another coroutine has run: it can only return early if the loop is free."""
    started, ticked = threading.Event(), threading.Event()

    def hint(full: str, text: str, old: str) -> str:
        started.set()
        return "hint: the loop ran meanwhile" if ticked.wait(10) else "hint: the loop was blocked"

    async def ticker() -> None:
        while True:
            if started.is_set():
                ticked.set()
            await asyncio.sleep(0.005)

    monkeypatch.setattr(StrReplaceEditor, "_no_match", staticmethod(hint))
    await sb.write_file("f.py", "x = 1\n")
    task = asyncio.create_task(ticker())
    try:
        obs = await StrReplaceEditor()({"command": "str_replace", "path": "f.py", "old_str": "y = 2", "new_str": "z"},
                                       ToolContext(sandbox=sb))
    finally:
        task.cancel()
    assert obs.text == "hint: the loop ran meanwhile"
