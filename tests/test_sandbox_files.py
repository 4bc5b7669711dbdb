"""The file API (read/write/list) and its confinement to the workspace, for every sandbox kind."""

from __future__ import annotations

import pytest

from agentkit.errors import SandboxError


async def test_write_creates_parents_and_read_returns_bytes(any_sandbox):
    await any_sandbox.write_file("a/b/c.txt", "héllo\n")
    assert await any_sandbox.read_file("a/b/c.txt") == "héllo\n".encode()
    await any_sandbox.write_file("bin.dat", bytes(range(256)))
    assert await any_sandbox.read_file("bin.dat") == bytes(range(256))
    # absolute paths inside the workspace work too
    assert await any_sandbox.read_file(f"{any_sandbox.workspace}/a/b/c.txt") == "héllo\n".encode()


async def test_overwrite_keeps_mode_and_shell_sees_it(any_sandbox):
    await any_sandbox.write_file("run.sh", "#!/bin/sh\necho one\n")
    await any_sandbox.run("chmod 755 run.sh")
    await any_sandbox.write_file("run.sh", "#!/bin/sh\necho two\n")
    r = await any_sandbox.run("./run.sh")
    assert r.exit_code == 0 and r.output == "two\n"


async def test_files_written_by_the_shell_are_readable(any_sandbox):
    await any_sandbox.run("mkdir -p d && printf 'from shell' > d/x.txt")
    assert await any_sandbox.read_file("d/x.txt") == b"from shell"


async def test_read_errors_match_the_os(any_sandbox):
    with pytest.raises(FileNotFoundError):
        await any_sandbox.read_file("missing.txt")
    await any_sandbox.run("mkdir -p adir")
    with pytest.raises(IsADirectoryError):
        await any_sandbox.read_file("adir")


async def test_list_dir(any_sandbox):
    await any_sandbox.write_file("ls/f.txt", "12345")
    await any_sandbox.run("mkdir -p ls/sub && ln -s f.txt ls/link")
    entries = {e.name: e for e in await any_sandbox.list_dir("ls")}
    assert set(entries) == {"f.txt", "sub", "link"}
    assert entries["f.txt"].kind == "file" and entries["f.txt"].size == 5
    assert entries["sub"].kind == "dir"
    assert entries["link"].kind == "symlink"
    root = [e.name for e in await any_sandbox.list_dir()]
    assert "ls" in root
    with pytest.raises(FileNotFoundError):
        await any_sandbox.list_dir("nope")


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "/tmp/x.txt"])
async def test_paths_outside_the_workspace_are_refused(any_sandbox, path):
    with pytest.raises(SandboxError, match="outside the workspace"):
        await any_sandbox.write_file(path, "nope")
    with pytest.raises(SandboxError, match="outside the workspace"):
        await any_sandbox.read_file(path)
    with pytest.raises(SandboxError, match="outside the workspace"):
        await any_sandbox.list_dir(path)


async def test_symlinks_pointing_out_are_refused(any_sandbox):
    await any_sandbox.run("ln -s /etc etc-link && ln -s /etc/passwd pw-link")
    with pytest.raises(SandboxError, match="outside the workspace"):
        await any_sandbox.read_file("pw-link")
    with pytest.raises(SandboxError, match="outside the workspace"):
        await any_sandbox.read_file("etc-link/passwd")
    with pytest.raises(SandboxError, match="outside the workspace"):
        await any_sandbox.write_file("etc-link/new-file", "x")
    # a symlink that stays inside is fine
    await any_sandbox.write_file("target.txt", "in")
    await any_sandbox.run("ln -s target.txt inner-link")
    assert await any_sandbox.read_file("inner-link") == b"in"
