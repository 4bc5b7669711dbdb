"""The peer harness: one virtualenv per framework, the scripted server, and the drivers.

Each peer is installed from PyPI into ``bench/.venvs/<name>`` (created on first use, reused
after) so its dependencies never mix with agentkit's; agentkit itself runs from the interpreter
running the benchmark. Every framework's driver is a separate process talking to the same
``server.py`` process, so all of them do the same work against the same server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE.parent / ".venvs"


@dataclass(frozen=True)
class Framework:
    name: str
    driver: str  # file in bench/peers/
    requirements: tuple[str, ...] = ()  # pip requirements; empty: runs on the current interpreter
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()  # extra driver arguments (variants of one framework)

    @property
    def venv(self) -> Path | None:
        return VENVS / self.name if self.requirements else None

    @property
    def ready(self) -> bool:
        """Whether it can run without installing anything (no network needed)."""
        return self.venv is None or (self.venv / ".bench-installed").exists()

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python") if self.venv else sys.executable


# Pinned so numbers are comparable between runs. mini-swe-agent's litellm imports `mcp` without
# declaring it, hence the extra requirement.
FRAMEWORKS: dict[str, Framework] = {
    "agentkit": Framework("agentkit", "agentkit_driver.py"),
    # The runs spread over one child process per core, a shard of them each (as `agentkit batch --processes`).
    "agentkit-processes": Framework("agentkit-processes", "agentkit_driver.py", args=("--processes", "auto")),
    # One model object (one connection pool) shared by every run, instead of one per run.
    "agentkit-shared-client": Framework("agentkit-shared-client", "agentkit_driver.py", args=("--client", "shared")),
    # Per-run models on plain httpx (its own transport) instead of agentkit's aiohttp client.
    "agentkit-httpx": Framework("agentkit-httpx", "agentkit_driver.py", args=("--client", "per-run-httpx")),
    # No framework: raw asyncio streams doing the least an agent step needs (the floor).
    "no-framework": Framework("no-framework", "floor_driver.py"),
    "mini-swe-agent": Framework("mini-swe-agent", "mini_swe_agent.py",
                                ("mini-swe-agent==2.4.6", "litellm==1.106.2", "mcp")),
    "smolagents": Framework("smolagents", "smolagents_driver.py", ("smolagents[openai]==1.26.0",)),
}


class PeerSetupError(RuntimeError):
    """A peer's virtualenv could not be created (e.g. PyPI unreachable)."""


def ensure_venv(fw: Framework, log=None) -> str:
    """The interpreter for ``fw``, creating and filling its virtualenv on first use."""
    if fw.venv is None:
        return fw.python
    marker = fw.venv / ".bench-installed"
    want = "\n".join(fw.requirements)
    if marker.exists() and marker.read_text() == want:
        return fw.python
    (log or _stderr)(f"[bench] creating {fw.venv} ({', '.join(fw.requirements)}) ...")
    subprocess.run([sys.executable, "-m", "venv", str(fw.venv)], check=True)
    proc = subprocess.run([fw.python, "-m", "pip", "install", "-q", *fw.requirements],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise PeerSetupError(f"pip install {' '.join(fw.requirements)} failed: {proc.stderr.strip()[-500:]}")
    marker.write_text(want)
    return fw.python


class ServerProcess:
    """``server.py`` in its own process; ``url`` is its base URL (no /v1)."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "server.py"), "--latency", str(latency_s)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.close()
            raise RuntimeError("the benchmark server did not start")

    def _call(self, method: str, path: str) -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def stats(self) -> dict[str, list[list[float]]]:
        return self._call("GET", "/stats")["runs"]

    def reset(self) -> None:
        self._call("POST", "/reset")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_driver(fw: Framework, base: str, *, steps: int, concurrency: int = 1, tool: str = "bash",
               warmup: bool = True, tag: str = "m", timeout_s: float = 900.0) -> dict:
    """Run one driver process; returns its JSON line plus ``elapsed_s`` (process wall incl. imports)."""
    python = ensure_venv(fw)
    cmd = [python, str(HERE / fw.driver), "--base", base, "--steps", str(steps),
           "--concurrency", str(concurrency), "--tool", tool, "--tag", tag, *fw.args]
    if warmup:
        cmd.append("--warmup")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **fw.env}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=str(HERE))
    elapsed = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{fw.name} driver failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    out = json.loads(lines[-1])
    out["framework"] = fw.name
    out["elapsed_s"] = elapsed
    return out


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # stdout stays clean for --json
