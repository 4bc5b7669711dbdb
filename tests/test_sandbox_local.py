"""LocalSandbox specifics: bubblewrap isolation, the unisolated fallback, the factory, helpers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import warnings

import pytest

from agentkit.errors import ConfigError, SandboxError
from agentkit.sandboxes import LocalSandbox, Sandbox, make_sandbox
from agentkit.sandboxes import local as local_mod
from agentkit.sandboxes.output import OutputCapture, clean, strip_ansi
from agentkit.sandboxes.session import ansi_c_quote

needs_bwrap = pytest.mark.skipif(not local_mod.bwrap_available(), reason="bubblewrap (bwrap) is not usable here")


async def _loopback_server() -> tuple[asyncio.base_events.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello from host\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


_CONNECT = ("python3 -c \"import socket,sys; s=socket.create_connection(('127.0.0.1', {port}), timeout=3); "
            "print(s.recv(100).decode().strip())\"; echo rc=$?")


def test_satisfies_the_protocol(tmp_path):
    sb = LocalSandbox(workspace=tmp_path, isolate=False)
    assert isinstance(sb, Sandbox)
    assert sb.workspace == os.path.realpath(tmp_path)


def test_factory(tmp_path):
    sb = make_sandbox("local", tmp_path, isolate=False)
    assert isinstance(sb, LocalSandbox) and sb.workspace == os.path.realpath(tmp_path)
    with pytest.raises(ConfigError, match="unknown sandbox kind"):
        make_sandbox("vm")


def test_missing_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(SandboxError, match="not a directory"):
        LocalSandbox(workspace=tmp_path / "nope")


@pytest.mark.filterwarnings("ignore:LocalSandbox is not isolated")
async def test_temporary_workspace_is_removed_on_close():
    async with LocalSandbox(isolate=False) as sb:
        ws = sb.workspace
        await sb.write_file("f", "x")
        assert os.path.isfile(os.path.join(ws, "f"))
    assert not os.path.exists(ws)


async def test_given_workspace_is_kept_and_edited_in_place(tmp_path):
    (tmp_path / "keep.txt").write_text("orig")
    async with LocalSandbox(workspace=tmp_path) as sb:
        r = await sb.run("cat keep.txt; echo new > made.txt")
        assert r.output == "orig"
    assert (tmp_path / "made.txt").read_text() == "new\n"


@pytest.mark.parametrize("isolate", [False, "auto"])
@pytest.mark.filterwarnings("ignore:LocalSandbox is not isolated")
async def test_host_secrets_are_not_inherited(tmp_path, monkeypatch, isolate):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-secret-value")
    monkeypatch.setenv("AGENTKIT_API_KEY", "another-secret")
    async with LocalSandbox(workspace=tmp_path, isolate=isolate, env={"MINE": "given"}) as sb:
        r = await sb.run('echo "[$OPENROUTER_API_KEY][$AGENTKIT_API_KEY][$MINE]"; env | grep -c -e sk-or-secret-value -e another-secret')
    assert r.output == "[][][given]\n0\n"


async def test_copy_out(tmp_path):
    (tmp_path / "ws").mkdir()
    async with LocalSandbox(workspace=tmp_path / "ws") as sb:
        await sb.run("mkdir -p d && echo hi > d/f.txt && ln -s d/f.txt link")
        out = await sb.copy_out(tmp_path / "out")
    assert open(os.path.join(out, "d", "f.txt")).read() == "hi\n"
    assert os.readlink(os.path.join(out, "link")) == "d/f.txt"


async def test_close_kills_background_processes(tmp_path):
    sb = LocalSandbox(workspace=tmp_path)
    await sb.start()
    await sb.run("sleep 100000 >/dev/null 2>&1 &")
    leader = sb.session.proc.pid
    await sb.close()
    assert _live_members(leader) == []


def _live_members(session: int) -> list[int]:
    """Processes of a session that are still alive (killed-but-unreaped zombies do not count)."""
    out = []
    for pid in local_mod._all_pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] not in (b"Z", b"X"):
            out.append(pid)
    return out


async def test_unisolated_runs_on_host_and_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(local_mod, "_warned_unisolated", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with LocalSandbox(workspace=tmp_path, isolate=False) as sb:
            assert sb.isolated is False
            server, port = await _loopback_server()
            async with server:
                r = await sb.run(_CONNECT.format(port=port), timeout=20)
            assert "hello from host" in r.output
        async with LocalSandbox(workspace=tmp_path, isolate=False):
            pass
    msgs = [w for w in caught if "not isolated" in str(w.message)]
    assert len(msgs) == 1


def test_isolate_true_without_bwrap_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(local_mod, "_bwrap_ok", False)
    with pytest.raises(SandboxError, match="bubblewrap"):
        LocalSandbox(workspace=tmp_path, isolate=True)
    assert LocalSandbox(workspace=tmp_path, isolate="auto").isolated is False


@needs_bwrap
async def test_bwrap_network_is_off_unless_allowed(tmp_path):
    server, port = await _loopback_server()
    async with server:
        async with LocalSandbox(workspace=tmp_path, isolate=True) as sb:
            assert sb.isolated
            r = await sb.run(_CONNECT.format(port=port), timeout=20)
            assert "hello from host" not in r.output and "rc=1" in r.output
            ifaces = await sb.run("tail -n +3 /proc/net/dev | cut -d: -f1")
            assert ifaces.output.split() == ["lo"]
            assert (await sb.run("echo still here")).output == "still here\n"
        async with LocalSandbox(workspace=tmp_path, isolate=True, network=True) as sb:
            r = await sb.run(_CONNECT.format(port=port), timeout=20)
            assert "hello from host" in r.output


@needs_bwrap
async def test_bwrap_only_workspace_and_private_tmp_are_writable(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = f"/var/tmp/agentkit-probe-{os.getpid()}"  # a host-writable place outside /tmp
    beside = tmp_path / "beside.txt"  # next to the workspace: lands in the private /tmp only
    async with LocalSandbox(workspace=ws, isolate=True) as sb:
        # /var is the sandbox's own empty tmpfs: the write lands there, never on the host
        r = await sb.run(f"echo x > {outside}; echo rc=$?; touch /etc/agentkit-probe; echo rc=$?; "
                         "touch /usr/agentkit-probe; echo rc=$?")
        assert r.output.count("Read-only file system") == 2
        assert r.output.count("rc=0") == 1 and r.output.startswith("rc=0")
        assert (await sb.run("echo in > inside.txt && echo tmp > /tmp/t && cat /tmp/t")).output == "tmp\n"
        await sb.run(f"echo x > {beside}")
    assert not os.path.exists(outside) and not beside.exists()
    assert not os.path.exists("/etc/agentkit-probe") and not os.path.exists("/usr/agentkit-probe")
    assert (ws / "inside.txt").read_text() == "in\n"
    # the sandbox's /tmp was private: nothing landed in the host's /tmp
    assert not os.path.exists("/tmp/t") or open("/tmp/t").read() != "tmp\n"


@needs_bwrap
async def test_bwrap_containment_of_runaway_commands(tmp_path):
    async with LocalSandbox(workspace=tmp_path, isolate=True, max_output=8 * 1024 * 1024) as sb:
        r = await sb.run("head -c 1073741824 /dev/zero | tr '\\0' x", timeout=120)
        assert r.timed_out and r.truncated and "more than" in r.note
        assert len(r.output) < 20_000
        assert (await sb.run("echo next")).output == "next\n"
        r = await sb.run("sleep 100000", timeout=1)
        assert r.timed_out and (await sb.run("echo next")).output == "next\n"
        r = await sb.run("exit")
        assert r.restarted and (await sb.run("echo next")).output == "next\n"


def test_ansi_c_quote_round_trips_through_bash():
    samples = ["plain", "it's", "back\\slash", "new\nline", "\x01\x1b[0m", "ünï ✓", "$HOME `x` $(y)"]
    for s in samples:
        out = subprocess.run(["bash", "-c", f"printf %s {ansi_c_quote(s)}"], capture_output=True).stdout
        assert out.decode() == s


def test_strip_ansi_and_clean():
    assert strip_ansi("\x1b[31mred\x1b[0m") == "red"
    assert strip_ansi("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert strip_ansi("10%\r50%\r100%\nnext") == "100%\nnext"
    assert strip_ansi("a\r\nb") == "a\nb"
    assert strip_ansi("bell\x07 nul\x00") == "bell nul"
    assert clean(b"ok \xff\xfe") == "ok \ufffd\ufffd"


def test_output_capture_head_tail_and_full_limit():
    cap = OutputCapture(cap=100, full_limit=150)
    for i in range(100):
        cap.add(f"{i:03d}\n".encode())
    assert cap.total == 400 and cap.truncated and not cap.full_complete
    assert len(cap.full) == 150
    text = cap.text("/tmp/out.log")
    assert text.startswith("000\n001\n") and text.endswith("098\n099\n")
    assert "300 bytes of output omitted; full output saved to /tmp/out.log" in text
    small = OutputCapture(cap=100, full_limit=150)
    small.add(b"short")
    assert not small.truncated and small.text() == "short"


RACY_BWRAP = """#!/bin/sh
# Loses bwrap's mount race the first {fails} time(s), as when a Docker container starts meanwhile.
n=$(cat "{count}" 2>/dev/null || echo 0); echo $((n + 1)) > "{count}"
if [ "$n" -lt {fails} ]; then
  echo 'bwrap: Can'"'"'t bind mount /oldroot/ on /newroot/: Unable to apply mount flags: remount "/newroot/var/lib/docker/overlay2/x/merged/etc/resolv.conf": Invalid argument' >&2
  exit 1
fi
exec {real} "$@"
"""


@needs_bwrap
@pytest.mark.parametrize("fails,starts", [(1, True), (10, False)])
async def test_a_start_that_races_a_mount_change_is_tried_again(tmp_path, monkeypatch, fails, starts):
    import shutil

    bin_dir, count = tmp_path / "bin", tmp_path / "count"
    bin_dir.mkdir()
    fake = bin_dir / "bwrap"
    fake.write_text(RACY_BWRAP.format(fails=fails, count=count, real=shutil.which("bwrap")))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ws = tmp_path / "ws"
    ws.mkdir()
    sb = LocalSandbox(workspace=str(ws), isolate=True)
    try:
        if starts:
            await sb.start()
            assert (await sb.run("echo ok")).output.strip() == "ok"
            assert count.read_text().strip() == "2"  # one lost race, then a good start
        else:  # a race that never ends is reported, not retried forever
            with pytest.raises(SandboxError, match="Can't bind mount"):
                await sb.start()
            assert count.read_text().strip() == str(local_mod._MOUNT_RACE_TRIES)
    finally:
        await sb.close()
