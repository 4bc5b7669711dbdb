"""The sandbox contract: a persistent shell session plus a file API confined to a workspace."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel


class ExecResult(BaseModel):
    """What a command produced: ``exit_code`` (None when it was killed), the capped ``output``, ``timed_out``,
    ``truncated`` (then ``full_output_path`` names the whole output, saved inside the sandbox) and
    ``restarted`` (the session died and was restarted).
    """

    exit_code: int | None  # None when the command was killed (timeout) or the session died
    output: str  # stdout+stderr interleaved, ANSI stripped, capped (head + marker + tail)
    timed_out: bool = False
    truncated: bool = False
    restarted: bool = False  # the session died during/before this command and was restarted
    full_output_path: str | None = None  # inside the sandbox; set when the output was truncated
    duration_s: float = 0.0
    note: str = ""  # a human/model-readable remark (what timed out, why the session restarted)


class DirEntry(BaseModel):
    """One entry of ``list_dir``: its ``name``, ``kind`` (file, dir, symlink, other) and ``size``."""

    name: str
    kind: Literal["file", "dir", "symlink", "other"]
    size: int = 0


@runtime_checkable
class Sandbox(Protocol):
    """A persistent shell plus a file API (see the design's Sandbox contract); ``LocalSandbox`` and
    ``DockerSandbox`` implement it, and tools are written against it.
    """

    workspace: str  # the workspace root as seen by commands inside the sandbox
    isolated: bool  # whether commands are actually contained (bwrap/docker) or run on the host

    async def start(self) -> None:
        """Start the shell (``async with`` does this)."""

    async def run(self, command: str, timeout: float | None = None,
                  idle_timeout: float | None = None) -> ExecResult:
        """Run ``command`` in the persistent shell; a timeout kills its process group and keeps its output."""

    async def read_file(self, path: str) -> bytes:
        """The bytes of a file in the workspace."""

    async def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file in the workspace."""

    async def list_dir(self, path: str = ".") -> list[DirEntry]:
        """The entries of a folder in the workspace."""

    async def close(self) -> None:
        """Stop the shell and release what the sandbox holds."""

    async def __aenter__(self) -> "Sandbox": ...

    async def __aexit__(self, *exc: object) -> None: ...
