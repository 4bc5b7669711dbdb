"""DockerSandbox.copy_out treats the container's archive as untrusted (issue 14).

Unit tests feed hand-made malicious archives through ``_copy_out`` with a fake engine API; the
Docker tests let a command in a real container try the same. Every host target is under tmp_path.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_sandbox import SANDBOX_IMAGE, require_docker


class _FakeAPI:
    """Just enough of docker's low-level API for ``_copy_out``: one archive of the workspace."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_archive(self, container: str, path: str) -> tuple[Any, dict[str, Any]]:
        assert path == "/workspace"
        return iter([self.data]), {}


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "",
            mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size = kind, link, mode, len(data)
    return info, data


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member("workspace", tarfile.DIRTYPE, mode=0o755)[0])
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
        good = _member("workspace/good.txt", data=b"kept\n")
        tar.addfile(good[0], io.BytesIO(good[1]))
    return buf.getvalue()


def _copy_out(archive: bytes, dest: Path) -> list[str]:
    """Run the real copy-back code on ``archive``; the good file after the bad ones must arrive."""
    from agentkit.sandboxes.docker import DockerSandbox

    sb = DockerSandbox(container="not-a-container", workdir="/workspace")
    sb.api = _FakeAPI(archive)
    dest.mkdir(exist_ok=True)
    sb._copy_out(str(dest))
    assert (dest / "good.txt").read_text() == "kept\n"  # one bad member does not lose the rest
    return getattr(sb, "copy_notes", [])  # (absent before issue 14)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret").write_text("host secret\n")
    return out


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "host secret\n"


def test_absolute_and_dotdot_names_are_left_out(tmp_path: Path, outside: Path) -> None:
    dest = tmp_path / "dest"
    notes = _copy_out(_tar(_member(f"{outside}/abs", data=b"x"),
                           _member(f"workspace/{outside}/abs", data=b"inside"),
                           _member("workspace/../outside/up", data=b"x"),
                           _member("workspace/sub/../../outside/up2", data=b"x")), dest)
    _untouched(outside)
    assert len(notes) == 3 and "absolute" in notes[0] and all("'..'" in n for n in notes[1:])
    assert (dest / str(outside).lstrip("/") / "abs").read_text() == "inside"  # '//' stays below dest


def test_hard_links_out_of_the_workspace_are_left_out(tmp_path: Path, outside: Path) -> None:
    notes = _copy_out(_tar(_member("workspace/h1", tarfile.LNKTYPE, link=str(outside / "secret")),
                           _member("workspace/h2", tarfile.LNKTYPE, link="workspace/../outside/secret"),
                           _member("workspace/h3", tarfile.LNKTYPE, link="etc/passwd")), tmp_path / "dest")
    _untouched(outside)
    assert len(notes) == 3 and not (tmp_path / "dest" / "h1").exists()
    assert (outside / "secret").stat().st_nlink == 1


def test_hard_links_inside_the_workspace_are_kept(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    notes = _copy_out(_tar(_member("workspace/a.txt", data=b"same\n"),
                           _member("workspace/b.txt", tarfile.LNKTYPE, link="workspace/a.txt")), dest)
    assert notes == [] and (dest / "b.txt").read_text() == "same\n"


def test_no_file_is_written_through_a_symlink_from_the_archive(tmp_path: Path, outside: Path) -> None:
    notes = _copy_out(_tar(_member("workspace/a", tarfile.SYMTYPE, link=str(outside)),
                           _member("workspace/a/x", data=b"pwned"),
                           _member("workspace/r", tarfile.SYMTYPE, link="../outside"),
                           _member("workspace/r/y", data=b"pwned")), tmp_path / "dest")
    _untouched(outside)
    assert os.readlink(tmp_path / "dest" / "a") == str(outside)  # kept as a link, never followed
    assert os.readlink(tmp_path / "dest" / "r") == "../outside"
    assert len(notes) == 2 and all("symlink" in n for n in notes)


def test_cve_2025_4517_realpath_overflow_does_not_escape(tmp_path: Path, outside: Path) -> None:
    """The published PoC shape: symlinks whose resolved path passes PATH_MAX, so a realpath-based
    check sees a path inside while the kernel follows it out."""
    comp, steps, path = "d" * 247, "abcdefghijklmnop", "workspace"
    members = []
    for step in steps:
        members.append(_member(f"{path}/{comp}", tarfile.DIRTYPE, mode=0o755))
        members.append(_member(f"{path}/{step}", tarfile.SYMTYPE, link=comp))
        path = f"{path}/{comp}"
    linkpath = "/".join(["workspace", *steps, "l" * 254])
    members.append(_member(linkpath, tarfile.SYMTYPE, link="/".join([".."] * len(steps))))
    depth = len(Path(tmp_path / "dest").parts) - len(outside.parent.parts)
    members.append(_member("workspace/escape", tarfile.SYMTYPE,
                           link=linkpath[len("workspace/"):] + "/.." * depth + "/outside"))
    members.append(_member("workspace/escape/pwned", data=b"pwned"))
    notes = _copy_out(_tar(*members), tmp_path / "dest")
    _untouched(outside)
    assert any("escape/pwned" in n for n in notes)


def test_symlink_already_on_the_host_is_replaced_not_followed(tmp_path: Path, outside: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "docs")
    os.symlink(outside / "secret", dest / "f.txt")
    notes = _copy_out(_tar(_member("workspace/docs", tarfile.DIRTYPE, mode=0o755),
                           _member("workspace/docs/x", data=b"pwned"),
                           _member("workspace/f.txt", data=b"new\n")), dest)
    _untouched(outside)
    assert notes == []
    assert not (dest / "docs").is_symlink() and (dest / "docs" / "x").read_bytes() == b"pwned"
    assert not (dest / "f.txt").is_symlink() and (dest / "f.txt").read_text() == "new\n"


def test_specials_are_skipped_and_setuid_dropped(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    notes = _copy_out(_tar(_member("workspace/fifo", tarfile.FIFOTYPE),
                           _member("workspace/dev", tarfile.CHRTYPE),
                           _member("workspace/run.sh", data=b"#!/bin/sh\n", mode=0o6755),
                           _member("workspace/d", tarfile.DIRTYPE, mode=0o1777)), dest)
    assert len(notes) == 2 and all("special" in n for n in notes)
    assert not (dest / "fifo").exists() and not (dest / "dev").exists()
    assert (dest / "run.sh").stat().st_mode & 0o7777 == 0o755
    assert (dest / "d").stat().st_mode & 0o7000 == 0


def test_member_checker_refuses_nul_and_foreign_names() -> None:
    from agentkit.sandboxes.copyback import _Skip, member_parts

    assert member_parts("workspace/./a//b", "workspace") == ["a", "b"]
    for bad in ("workspace/a\x00b", "/workspace/a", "workspace/../x", "other/a"):
        with pytest.raises(_Skip):
            member_parts(bad, "workspace")


# ----- against a real container ---------------------------------------------------------------
@pytest.fixture
def docker_ready() -> None:
    require_docker()


@pytest.mark.docker
async def test_model_cannot_write_through_a_workspace_symlink(docker_ready: None, tmp_path: Path,
                                                              outside: Path) -> None:
    from agentkit.sandboxes import DockerSandbox

    src = tmp_path / "repo"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    os.symlink(outside, src / "docs")
    async with DockerSandbox(image=SANDBOX_IMAGE, workspace=src) as sb:
        r = await sb.run('mkdir -p "$(readlink docs)" && echo pwned > docs/x && cat docs/x')
        assert r.output == "pwned\n", r
        out = await sb.copy_out(tmp_path / "out")
        # the model swaps the link for a folder and copies back over a tree that has the link
        r = await sb.run("rm docs && mkdir docs && echo pwned > docs/x")
        assert r.exit_code == 0, r
        await sb.copy_out(src)
    _untouched(outside)
    assert os.readlink(os.path.join(out, "docs")) == str(outside)
    assert not (src / "docs").is_symlink() and (src / "docs" / "x").read_text() == "pwned\n"


@pytest.mark.docker
async def test_absolute_and_dangling_links_round_trip(docker_ready: None, tmp_path: Path) -> None:
    from agentkit.sandboxes import DockerSandbox

    async with DockerSandbox(image=SANDBOX_IMAGE) as sb:
        r = await sb.run("python3 -m venv --without-pip .venv && ln -s /nonexistent/target dangling "
                         "&& ln -s missing.txt rel && echo one > a.txt && ln a.txt hard.txt && mkfifo pipe")
        assert r.exit_code == 0, r
        out = Path(await sb.copy_out(tmp_path / "out"))
        assert sb.copy_notes and "pipe" in sb.copy_notes[0]
    assert os.readlink(out / ".venv" / "bin" / "python3") == "/usr/bin/python3"
    assert os.readlink(out / ".venv" / "bin" / "python") == "python3"
    assert os.readlink(out / "dangling") == "/nonexistent/target"
    assert os.readlink(out / "rel") == "missing.txt"
    assert (out / "hard.txt").read_text() == "one\n" and (out / ".venv" / "pyvenv.cfg").is_file()
    assert not (out / "pipe").exists()
