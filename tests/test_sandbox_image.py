"""The offline image builder: reading the mirror from apt sources, and the image it produced."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from tests.fixtures_sandbox import SANDBOX_IMAGE, require_docker

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "sandboxes" / "build-offline-image.sh"


def _mirror(tmp_path: pathlib.Path, files: dict[str, str], codename: str = "bookworm") -> subprocess.CompletedProcess:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (apt / name).write_text(text)
    osr = tmp_path / "os-release"
    osr.write_text(f"ID=debian\nVERSION_CODENAME={codename}\n")
    env = {**os.environ, "APT_DIR": str(apt), "OS_RELEASE": str(osr)}
    return subprocess.run(["bash", str(SCRIPT), "--print-mirror"], capture_output=True, text=True, env=env)


def test_deb822_sources(tmp_path):
    r = _mirror(tmp_path, {"sources.list.d/debian.sources": (
        "Types: deb-src\nURIs: http://src.example.invalid/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://security.example.invalid/debian-security\nSuites: bookworm-security\n")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["http://mirror.example.invalid/debian", "bookworm",
                                "/usr/share/keyrings/debian-archive-keyring.gpg"]


def test_one_line_sources_with_options(tmp_path):
    r = _mirror(tmp_path, {"sources.list": (
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb http://security.invalid/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/k.gpg] http://one.invalid/debian bookworm main contrib\n")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["http://one.invalid/debian", "bookworm", "/etc/apt/keyrings/k.gpg"]


def test_disabled_files_are_ignored_and_missing_source_is_an_error(tmp_path):
    r = _mirror(tmp_path, {"sources.list.d/other.list.disabled": "deb http://x.invalid/debian bookworm main\n",
                           "sources.list.d/node.sources": ("Types: deb\nURIs: http://node.invalid/node\n"
                                                            "Suites: nodistro\n")})
    assert r.returncode == 1
    assert "no Debian apt source" in r.stderr


@pytest.mark.docker
def test_built_image_has_the_tools_and_a_non_root_user():
    require_docker()
    import docker

    client = docker.from_env()
    try:
        image = client.images.get(SANDBOX_IMAGE)
        assert image.attrs["Config"]["User"] == "agent"
        out = client.containers.run(SANDBOX_IMAGE, ["sh", "-c", "id -u; python3 -V; git --version; "
                                                    "for t in rg setsid realpath find base64; do command -v $t; done | wc -l"],
                                    network_mode="none", remove=True).decode()
    finally:
        client.close()
    lines = out.split("\n")
    assert lines[0] == "1000"
    assert lines[1].startswith("Python 3.") and lines[2].startswith("git version")
    assert lines[3] in ("4", "5")  # ripgrep is optional (only when the mirror has it)
