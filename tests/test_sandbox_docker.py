"""DockerSandbox specifics and containment, against a real Docker engine.

Containment (per the issue): a fork bomb, memory far past the limit, printing 1 GB,
``sleep 100000``, reaching the network, writing outside the workspace and ``exit``: each is
contained, reported, and the next command in the same sandbox still works.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from agentkit.errors import SandboxError
from tests.fixtures_sandbox import SANDBOX_IMAGE, require_docker

pytestmark = pytest.mark.docker

MEM = "256m"
PIDS = 128


@pytest.fixture(scope="module")
def docker_api() -> Iterator[object]:
    require_docker()
    import docker

    client = docker.from_env()
    yield client.api
    client.close()


@pytest.fixture(scope="module")
def limited_container(docker_api: object) -> Iterator[str]:
    """One container with small limits shared by the containment tests."""
    from agentkit.sandboxes.docker import create_container, remove_container

    cid = create_container(SANDBOX_IMAGE, mem_limit=MEM, pids_limit=PIDS, cpus=1.0)
    yield cid
    remove_container(cid)


@pytest.fixture
async def limited(limited_container: str):
    from agentkit.sandboxes.docker import DockerSandbox

    sb = DockerSandbox(container=limited_container, workdir="/workspace/limited",
                       mem_limit=MEM, pids_limit=PIDS, max_output=8 * 1024 * 1024)
    await sb.start()
    yield sb
    await sb.close()


async def _still_works(sb) -> None:
    r = await sb.run("ls / >/dev/null && python3 -c 'print(6*7)'", timeout=60)
    assert r.exit_code == 0 and r.output.strip().endswith("42"), r


# ----- containment -------------------------------------------------------------------------
async def test_fork_bomb_is_contained(limited, docker_api):
    r = await limited.run(":(){ :|:& };:; sleep 3", timeout=30)
    after = await limited.run("true", timeout=60)
    notes = r.note + after.note
    assert "process limit" in notes
    await _still_works(limited)
    procs = await limited.run("ls -d /proc/[0-9]* | wc -l")
    assert int(procs.output.split()[-1]) < 20
    assert docker_api.inspect_container(limited.container_id)["State"]["Running"]


_PY_BOMB = "python3 -c 'import os\nwhile True:\n  try: os.fork()\n  except OSError: pass'"


async def test_timed_out_fork_bombs_leave_nothing_behind(docker_api):
    """Issue 14: a timeout kills the command's whole tree, background and setsid'd children and
    orphans included, even with every pid taken (default limit 512), so programs start again."""
    from agentkit.sandboxes import DockerSandbox

    bombs = [":(){ :|:& };:; sleep 60", f"({_PY_BOMB} &); sleep 60", f"setsid {_PY_BOMB} & sleep 60"]
    async with DockerSandbox(image=SANDBOX_IMAGE) as sb:
        await sb.run("export KEEP=kept")
        for bomb in bombs * 3:
            r = await sb.run(bomb, timeout=2)
            assert r.timed_out and not r.restarted, r
            for _ in range(3):
                ok = await sb.run("python3 -c 'print(1)'; echo $KEEP", timeout=30)
                assert ok.exit_code == 0 and ok.output == "1\nkept\n" and not ok.restarted, (bomb, ok)
            procs = await sb.run("ls -d /proc/[0-9]* | wc -l")
            assert int(procs.output.split()[-1]) < 20, (bomb, procs)


async def test_memory_hog_is_killed_and_reported(limited):
    r = await limited.run("python3 -c 'b = b\"x\" * (2 << 30); print(len(b))'", timeout=120)
    assert r.exit_code == 137
    assert "memory limit" in r.note and MEM in r.note
    await _still_works(limited)


async def test_printing_a_gigabyte_is_cut_and_saved(limited):
    r = await limited.run("head -c 1073741824 /dev/zero | tr '\\0' x; echo", timeout=300)
    assert r.timed_out and r.truncated and r.exit_code is None
    assert "printed more than" in r.note
    assert len(r.output) < 20_000 and r.output.startswith("xxxx")
    assert r.full_output_path and r.full_output_path.startswith("/tmp/agentkit-output/")
    size = await limited.run(f"stat -c %s {r.full_output_path}")
    assert int(size.output) >= 8 * 1024 * 1024
    await _still_works(limited)


async def test_sleep_forever_times_out(limited):
    r = await limited.run("echo before; sleep 100000", timeout=2)
    assert r.timed_out and r.output.startswith("before\n") and not r.restarted
    left = await limited.run("ps -eo args | grep -c '^sleep 100000' || true")
    assert left.output.strip() == "0"
    await _still_works(limited)


async def test_network_is_off_by_default(limited):
    r = await limited.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert r.output.split() == ["lo"]
    r = await limited.run("python3 -c \"import socket; socket.create_connection(('192.0.2.1', 9), timeout=2)\"",
                          timeout=30)
    assert r.exit_code != 0 and "unreachable" in r.output.lower()
    await _still_works(limited)


async def test_writing_outside_the_workspace_is_refused(limited, docker_api):
    r = await limited.run("id -un; echo x > /etc/agentkit-probe; echo rc=$?; echo y > /usr/bin/probe; echo rc=$?")
    assert r.output.splitlines()[0] == "agent"
    assert r.output.count("Permission denied") == 2 and "rc=0" not in r.output
    with pytest.raises(SandboxError):
        await limited.write_file("/etc/agentkit-probe", "x")
    with pytest.raises(SandboxError):
        await limited.write_file("../../etc/agentkit-probe", "x")
    assert not os.path.exists("/etc/agentkit-probe")
    await _still_works(limited)


async def test_exit_restarts_the_shell(limited):
    await limited.run("cd /tmp")
    r = await limited.run("exit 1")
    assert r.restarted and "exit" in r.note
    assert (await limited.run("pwd")).output == "/tmp\n"
    await _still_works(limited)


# ----- container set-up ---------------------------------------------------------------------
async def test_own_container_defaults_and_removal(docker_api, tmp_path):
    from agentkit.sandboxes import DockerSandbox

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hi')\n")
    os.symlink("app.py", tmp_path / "src" / "link.py")
    async with DockerSandbox(image=SANDBOX_IMAGE, workspace=tmp_path) as sb:
        info = docker_api.inspect_container(sb.container_id)
        host = info["HostConfig"]
        assert info["Config"]["Labels"]["agentkit.sandbox"] == "1"
        assert host["NetworkMode"] == "none" and host["Privileged"] is False
        assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["KILL"]
        assert host["Memory"] == 2 << 30 and host["PidsLimit"] == 512 and host["NanoCpus"] == 2 * 10**9
        assert "no-new-privileges" in host["SecurityOpt"]
        assert (await sb.run("id -u")).output == "1000\n"
        assert sb.start_seconds is not None and sb.isolated
        r = await sb.run("python3 src/app.py && readlink src/link.py && stat -c %U src/app.py")
        assert r.output == "hi\napp.py\nagent\n"
        assert (await sb.run("grep -c . /proc/self/status >/dev/null; cat /proc/self/status | grep CapEff")).output.split()[-1] == "0000000000000000"
        cid = sb.container_id
    from docker.errors import NotFound

    with pytest.raises(NotFound):
        docker_api.inspect_container(cid)


async def test_copy_out_brings_changes_back(tmp_path):
    from agentkit.sandboxes import DockerSandbox

    src = tmp_path / "repo"
    src.mkdir()
    (src / "a.txt").write_text("old\n")
    async with DockerSandbox(image=SANDBOX_IMAGE, workspace=src) as sb:
        await sb.run("echo new > a.txt && mkdir -p pkg && echo 'x = 1' > pkg/m.py")
        out = await sb.copy_out(tmp_path / "out")
    assert (src / "a.txt").read_text() == "old\n"  # copied in, so the original is untouched
    assert open(os.path.join(out, "a.txt")).read() == "new\n"
    assert open(os.path.join(out, "pkg", "m.py")).read() == "x = 1\n"


async def test_bind_mount_edits_in_place(tmp_path):
    from agentkit.sandboxes import DockerSandbox

    (tmp_path / "f.txt").write_text("one\n")
    async with DockerSandbox(image=SANDBOX_IMAGE, workspace=tmp_path, mount=True) as sb:
        r = await sb.run("cat f.txt && echo two >> f.txt && echo made > new.txt")
        assert r.exit_code == 0, r
        await sb.write_file("api.txt", "via api")
    assert (tmp_path / "f.txt").read_text() == "one\ntwo\n"
    assert (tmp_path / "new.txt").read_text() == "made\n"
    assert (tmp_path / "api.txt").read_text() == "via api"


async def test_network_can_be_enabled(docker_api):
    from agentkit.sandboxes import DockerSandbox

    async with DockerSandbox(image=SANDBOX_IMAGE, network=True) as sb:
        assert docker_api.inspect_container(sb.container_id)["HostConfig"]["NetworkMode"] == "bridge"
        r = await sb.run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
        assert "eth0" in r.output.split()


async def test_missing_image_is_a_clear_error():
    from agentkit.sandboxes import DockerSandbox

    with pytest.raises(SandboxError, match="not found"):
        async with DockerSandbox(image="agentkit-no-such-image:never"):
            pass


async def test_concurrent_sandboxes_are_independent():
    from agentkit.sandboxes import DockerSandbox

    async with DockerSandbox(image=SANDBOX_IMAGE) as a, DockerSandbox(image=SANDBOX_IMAGE) as b:
        await asyncio.gather(a.run("echo A > mine.txt"), b.run("echo B > mine.txt"))
        ra, rb = await asyncio.gather(a.run("cat mine.txt"), b.run("cat mine.txt"))
        assert (ra.output, rb.output) == ("A\n", "B\n")



async def test_regular_account_is_found_in_the_image(limited):
    """Used when an image sets no USER: the first ordinary account (here ``agent``, uid 1000)."""
    assert await asyncio.to_thread(limited._regular_user) == "agent"
