"""The sandbox contract: a persistent shell session plus a file API confined to a workspace."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel


class ExecResult(BaseModel):
    exit_code: int | None  # None when the command was killed (timeout) or the session died
    output: str  # stdout+stderr interleaved, ANSI stripped, capped (head + marker + tail)
    timed_out: bool = False
    truncated: bool = False
    restarted: bool = False  # the session died during/before this command and was restarted
    full_output_path: str | None = None  # inside the sandbox; set when the output was truncated
    duration_s: float = 0.0
    note: str = ""  # a human/model-readable remark (what timed out, why the session restarted)


class DirEntry(BaseModel):
    name: str
    kind: Literal["file", "dir", "symlink", "other"]
    size: int = 0


@runtime_checkable
class Sandbox(Protocol):
    workspace: str  # the workspace root as seen by commands inside the sandbox
    isolated: bool  # whether commands are actually contained (bwrap/docker) or run on the host

    async def start(self) -> None: ...

    async def run(self, command: str, timeout: float | None = None,
                  idle_timeout: float | None = None) -> ExecResult: ...

    async def read_file(self, path: str) -> bytes: ...

    async def write_file(self, path: str, data: bytes | str) -> None: ...

    async def list_dir(self, path: str = ".") -> list[DirEntry]: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> "Sandbox": ...

    async def __aexit__(self, *exc: object) -> None: ...
