"""The local sandbox against a hostile model: each test is one escape the adversarial review showed.

Every probe is harmless to the host: writability is asked with ``os.access``, sockets with a
connect that is closed at once, and files are only written under temporary folders.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import textwrap

import pytest

from agentkit.sandboxes import LocalSandbox
from agentkit.sandboxes import local as local_mod
from agentkit.sandboxes.bwrap import toolchain_roots
from agentkit.sandboxes.limits import Cgroup, Limits, parse_size

needs_bwrap = pytest.mark.skipif(not local_mod.bwrap_available(), reason="bubblewrap (bwrap) is not usable here")
needs_cgroup = pytest.mark.skipif(Cgroup.create(Limits(pids_limit=8)) is None,
                                  reason="no cgroup can be made here (rlimits are used instead)")

PY = "python3 -c "


def _py(code: str) -> str:
    return PY + shlex.quote(textwrap.dedent(code))


@pytest.fixture(scope="module", autouse=True)
def _remove_probe_cgroups():
    yield
    # needs_cgroup made one at import; nothing is in it, remove what is left of it
    import glob

    for d in glob.glob(f"/sys/fs/cgroup/*/**/agentkit-{os.getpid()}-*", recursive=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


@needs_bwrap
async def test_kernel_knobs_are_read_only(tmp_path):
    """A writable kernel.core_pattern runs a program of the model's choosing as root on the host."""
    async with LocalSandbox(workspace=tmp_path, isolate=True) as sb:
        r = await sb.run(_py("""
            import os
            knobs = ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
                     "/proc/sys/fs/binfmt_misc", "/proc/sysrq-trigger", "/proc/sys/vm/drop_caches"]
            print([k for k in knobs if os.path.exists(k) and os.access(k, os.W_OK)])
        """))
    assert r.output.strip() == "[]"


@needs_bwrap
async def test_host_sockets_and_folders_are_invisible(tmp_path):
    """A read-only mount does not stop connect(): from inside, the review drove the host's Docker."""
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tempfile.mkdtemp(prefix="agentkit-probe-", dir="/var/tmp")  # a host place outside /tmp
    sock_path = os.path.join(outside, "host.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(sock_path)
        listener.listen(1)
        probe = _py(f"""
            import os, socket
            seen = {{}}
            for p in [{sock_path!r}, "/var/run/docker.sock", "/run/docker.sock",
                      "/run/containerd/containerd.sock", {outside!r}, "/home"]:
                seen[p] = os.path.exists(p)
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect({sock_path!r}); seen["connect"] = True
            except OSError:
                seen["connect"] = False
            finally:
                s.close()
            print(sorted(k for k, v in seen.items() if v))
        """)
        async with LocalSandbox(workspace=ws, isolate=True) as sb:
            r = await sb.run(probe)
        assert r.output.strip() == "[]", r.output
    finally:
        listener.close()
        os.unlink(sock_path)
        os.rmdir(outside)


@needs_bwrap
async def test_secrets_in_etc_are_unreadable(tmp_path):
    """The sandbox's uid maps to agentkit's owner, so owner-only files must not be mounted."""
    hidden = [p for p in ("/etc/shadow", "/etc/gshadow")
              if os.path.exists(p) and not os.stat(p).st_mode & 0o004 and os.path.getsize(p) > 0]
    if not hidden:
        pytest.skip("no owner-only files in /etc on this machine")
    async with LocalSandbox(workspace=tmp_path, isolate=True) as sb:
        r = await sb.run(_py(f"""
            sizes = []
            for p in {hidden!r}:
                try:
                    sizes.append(len(open(p, "rb").read()))
                except OSError:
                    sizes.append(0)
            print(sum(sizes))
        """))
    assert r.output.strip() == "0"


@needs_bwrap
async def test_commands_are_not_root_and_files_stay_the_users(tmp_path):
    async with LocalSandbox(workspace=tmp_path, isolate=True) as sb:
        r = await sb.run("id -u; id -g; echo made > made.txt; mkdir -p d/e; whoami")
        uid, gid, name = r.output.split()
        assert uid != "0" and gid != "0" and name
        # capabilities: none in the sandbox's user namespace either
        caps = await sb.run("grep CapEff /proc/self/status")
        assert caps.output.split()[-1] == "0000000000000000"
    st = os.stat(tmp_path / "made.txt")
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())  # the user's, not a stranger's
    assert os.stat(tmp_path / "d" / "e").st_uid == os.geteuid()


@needs_bwrap
async def test_tools_on_path_still_work(tmp_path):
    async with LocalSandbox(workspace=tmp_path, isolate=True) as sb:
        r = await sb.run("python3 -c 'print(6*7)' && git --version >/dev/null && echo ok")
    assert r.output.split() == ["42", "ok"]


def test_toolchain_roots_keep_the_workspace_and_its_neighbours_out(tmp_path):
    ws = tmp_path / "runs" / "r1" / "ws"
    ws.mkdir(parents=True)
    tool = tmp_path / "tc" / "bin"
    tool.mkdir(parents=True)
    inside_bin = tmp_path / "runs" / "bin"  # a PATH entry next to the runs: only that folder
    inside_bin.mkdir()
    roots = toolchain_roots(f"{tool}:/usr/bin:{inside_bin}:relative/bin:{ws}", str(ws))
    assert str(tool.parent) in roots and "/usr" not in roots
    assert str(inside_bin) in roots and str(tmp_path / "runs") not in roots
    assert not any(str(ws).startswith(r.rstrip("/") + "/") or r == str(ws) for r in roots)


@needs_bwrap
@needs_cgroup
async def test_fork_bomb_ends_only_that_command(tmp_path):
    async with LocalSandbox(workspace=tmp_path, isolate=True, pids_limit=64) as sb:
        bomb = _py("""
            import os, time
            n = 0
            try:
                while True:
                    if os.fork() == 0:
                        time.sleep(60); os._exit(0)
                    n += 1
            except OSError as e:
                print("stopped after", n, type(e).__name__)
        """)
        r = await sb.run(bomb + "; sleep 60", timeout=5)
        assert r.timed_out and "stopped after" in r.output
        assert int(r.output.split("stopped after")[1].split()[0]) < 64
        for _ in range(3):  # everything the bomb left was killed: programs start again
            nxt = await sb.run("python3 -c 'print(1)'")
            assert nxt.output == "1\n" and nxt.exit_code == 0
        assert len(sb.cgroup.pids()) < 8


@needs_bwrap
@needs_cgroup
async def test_a_big_allocation_ends_only_that_command(tmp_path):
    async with LocalSandbox(workspace=tmp_path, isolate=True, mem_limit="256m") as sb:
        r = await sb.run(_py("""
            b = bytearray(1 << 30)  # 1 GiB, touched, past the 256 MiB limit
            print("allocated", len(b))
        """), timeout=60)
        assert r.exit_code != 0 and "allocated 1073741824" not in r.output
        assert (await sb.run("echo alive")).output == "alive\n"


@needs_bwrap
async def test_timeout_kills_detached_background_children(tmp_path):
    """setsid and double forks leave the shell's session; the sandbox still finds them."""
    async with LocalSandbox(workspace=tmp_path, isolate=True) as sb:
        r = await sb.run("setsid sleep 10007 & (sleep 10009 &) ; sleep 10008", timeout=1)
        assert r.timed_out
        left = await sb.run("ps -eo args | grep -c '^sleep 1000[789]' || true")
        assert left.output.strip() == "0"


def test_limits_parse_like_docker():
    assert parse_size("2g") == 2 << 30 and parse_size("512m") == 512 << 20 and parse_size(1024) == 1024
    assert parse_size(None) is None
    with pytest.raises(ValueError, match="invalid memory size"):
        parse_size("lots")
    assert Limits().mem_limit == "2g" and Limits().pids_limit == 512 and Limits().cpus == 2.0
    assert "ulimit -u 512" in Limits().ulimit_prefix()


async def test_defaults_match_the_docker_sandbox(tmp_path):
    import inspect

    from agentkit.sandboxes.docker import DockerSandbox

    local = inspect.signature(LocalSandbox).parameters
    docker = inspect.signature(DockerSandbox).parameters
    for name in ("network", "mem_limit", "pids_limit", "cpus"):
        assert local[name].default == docker[name].default, name
    assert local["network"].default is False


UNISOLATED = """
import asyncio, sys, warnings
warnings.simplefilter("ignore")
from agentkit.sandboxes import LocalSandbox
async def main():
    async with LocalSandbox(workspace=sys.argv[1], isolate=False) as sb:
        r = await sb.run("tr '\\\\0' '\\\\n' < /proc/$PPID/environ | grep -c sk-test-secret-value || true; "
                         "echo isolation=$AGENTKIT_ISO")
        print(sb.isolation, r.output.split()[0])
    import os
    print("still", os.environ["OPENROUTER_API_KEY"])
asyncio.run(main())
"""


def test_unisolated_shell_cannot_read_the_agents_keys(tmp_path):
    env = {**os.environ, "OPENROUTER_API_KEY": "sk-test-secret-value", "MY_TOKEN": "sk-test-secret-value"}
    out = subprocess.run([sys.executable, "-c", UNISOLATED, str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "none 0"  # isolation none, and no key in /proc/$PPID/environ
    assert lines[1] == "still sk-test-secret-value"  # the agent itself still has its key


# -- the CLI: --network and what the run records say about isolation ------------------------------

async def _loopback_listener():
    import asyncio

    async def handle(reader, writer):
        writer.write(b"hello from host\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@needs_bwrap
@pytest.mark.parametrize("network", [False, True])
async def test_cli_network_flag_and_isolation_are_recorded(tmp_path, demo_repo, network):
    import asyncio

    from tests.fixtures_cli import cli_env, write_jsonl

    server, port = await _loopback_listener()
    probe = (f"python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', {port}), timeout=3); "
             f"print(s.recv(100).decode().strip())\" 2>/dev/null || echo unreachable")
    script = write_jsonl(tmp_path / "s.jsonl", [
        {"content": "", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": probe})}]},
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "ok"})}]},
    ])
    out = tmp_path / "out"
    args = [sys.executable, "-m", "agentkit", "code", "probe", "--repo", str(demo_repo), "--model",
            f"replay:{script}", "--out", str(out)] + (["--network"] if network else [])
    async with server:
        proc = await asyncio.create_subprocess_exec(*args, env=cli_env(), stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, stderr.decode()
    records = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    assert records[0]["sandbox"]["isolation"] == "bwrap" and records[0]["options"]["network"] is network
    observation = next(r for r in records if r["type"] == "tool_result")["observation"]["text"]
    assert ("hello from host" in observation) is network and ("unreachable" in observation) is not network
    assert json.loads((out / "result.json").read_text())["isolation"] == "bwrap"
    assert "isolation: bwrap" in stdout.decode()


@pytest.mark.filterwarnings("ignore:LocalSandbox is not isolated")
async def test_an_unisolated_run_says_so_in_its_records(tmp_path):
    from agentkit import Agent
    from agentkit.models import Replay
    from agentkit.trajectory import read_records

    traj = tmp_path / "t.jsonl"
    async with LocalSandbox(workspace=tmp_path, isolate=False) as sb:
        agent = Agent(Replay([{"content": "done"}]), sandbox=sb, trajectory=traj)
        await agent.run("hi")
    assert read_records(traj)[0]["sandbox"]["isolation"] == "none"


@needs_cgroup
def test_cgroups_of_dead_agentkit_processes_are_pruned():
    dead = 2**22 + 7  # above pid_max's default: no such process
    cg = Cgroup.create(Limits(pids_limit=8))
    parents = [os.path.dirname(d) for d in cg.dirs]
    stale = [os.path.join(p, f"agentkit-{dead}-0") for p in parents]
    for d in stale:
        os.mkdir(d)
    try:
        again = Cgroup.create(Limits(pids_limit=8))
        assert not any(os.path.exists(d) for d in stale)
        again.remove()
    finally:
        cg.remove()
        for d in stale:
            if os.path.exists(d):
                os.rmdir(d)
    assert not any(os.path.exists(d) for d in cg.dirs)


def test_resume_takes_network_access_only_when_repeated(tmp_path, demo_repo):
    from tests.fixtures_cli import run_cli, write_jsonl

    script = write_jsonl(tmp_path / "s.jsonl", [
        {"content": "", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": "true"})}]},
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "ok"})}]},
    ])
    out = tmp_path / "out"
    first = run_cli("code", "t", "--repo", str(demo_repo), "--model", f"replay:{script}", "--out", str(out),
                    "--network", "--max-steps", "1", "--quiet")
    assert first.returncode == 1, first.stderr  # stopped by the step limit
    again = run_cli("resume", str(out / "trajectory.jsonl"), "--quiet")
    assert again.returncode == 2 and "--network" in again.stderr and "Traceback" not in again.stderr
    ok = run_cli("resume", str(out / "trajectory.jsonl"), "--network", "--max-steps", "5", "--quiet")
    assert ok.returncode == 0, ok.stderr
