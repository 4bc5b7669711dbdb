"""Fixtures for CLI end-to-end tests: the ``agentkit`` command in a subprocess, with no API keys
in its environment, plus a scratch copy of the demo repo and the fake model server as a process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from agentkit import demo

KEY_VARS = ("OPENROUTER_API_KEY", "DEEPSEEK_API_KEY", "ATLASCLOUD_API_KEY", "AGENTKIT_API_KEY", "OPENAI_API_KEY")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"})
    env.update(extra)
    return env


def run_cli(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``agentkit ARGS`` in a subprocess (stdout is a pipe, so progress comes as plain lines)."""
    return subprocess.run([sys.executable, "-m", "agentkit", *args], cwd=cwd, env=env or cli_env(),
                          input=input if input is not None else "", capture_output=True, text=True, timeout=timeout)


def run_on_terminal(*args: str, cwd: str | Path | None = None) -> tuple[int, str]:
    """Run ``agentkit ARGS`` on a pseudo-terminal (160 columns); its exit code and everything it
    wrote there, escapes included."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agentkit", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, cwd=cwd, env=cli_env(TERM="xterm-256color", COLUMNS="160"))
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    rc = proc.wait(timeout=120)
    os.close(master)
    return rc, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def agentkit_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A scratch copy of the bundled buggy repo (``median`` wrong for even lengths)."""
    dest = tmp_path / "repo"
    shutil.copytree(demo.REPO, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[[list[dict[str, Any]]], str]]:
    """Start ``python -m agentkit.testing.server --script FILE``; returns its base URL."""
    procs: list[subprocess.Popen[str]] = []

    def start(script: list[dict[str, Any]]) -> str:
        path = write_jsonl(tmp_path / f"server-script-{len(procs)}.jsonl", script)
        proc = subprocess.Popen([sys.executable, "-m", "agentkit.testing.server", "--script", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None else "")
        return line

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
