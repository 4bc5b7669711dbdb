"""The sandbox contract: a persistent shell session plus a file API confined to a workspace."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Callable, Concatenate, Literal, ParamSpec, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from agentkit.errors import SandboxError

P = ParamSpec("P")
S = TypeVar("S")

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a shell takes as a variable name


def env_name_problem(names: Iterable[object]) -> str | None:
    """Why one of ``names`` cannot be an environment variable of a sandbox, or None when all can. A
    name goes into the shell's ``export`` line as it is, so ``"X=1; rm -rf ~; Y"`` would run there as a
    command: only shell names (letters, digits and ``_``, not starting with a digit) are taken."""
    for name in names:
        if not (isinstance(name, str) and ENV_NAME.fullmatch(name)):
            return (f"{name!r} is not a shell variable name (letters, digits and _, not starting with a "
                    "digit)")
    return None


def checked_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """A sandbox's ``env`` argument as its own dict; a ``SandboxError`` for a name ``env_name_problem``
    refuses, before anything is started or created."""
    problem = env_name_problem(env or {})
    if problem:
        raise SandboxError(f"env: {problem}")
    return dict(env or {})


def keywords_only(example: Callable[[str, object], str]) -> Callable[
        [Callable[Concatenate[S, P], None]], Callable[Concatenate[S, P], None]]:
    """Make a sandbox's ``__init__`` refuse positional arguments with a ``TypeError`` that names the fix.

    ``LocalSandbox`` took the workspace first and ``DockerSandbox`` the image, so ``Sandbox(path)``
    meant two different things; both now take keywords only. ``example(class_name, value)`` is the
    call to write instead, for the first value given. Type checkers and ``inspect.signature`` see the
    keyword-only signature of the wrapped ``__init__``."""
    def wrap(init: Callable[Concatenate[S, P], None]) -> Callable[Concatenate[S, P], None]:
        @functools.wraps(init)
        def checked(self: S, /, *args: P.args, **kw: P.kwargs) -> None:
            if args:
                name = type(self).__name__
                raise TypeError(f"{name} takes keyword arguments only: write {example(name, args[0])} "
                                f"instead of {name}({', '.join(repr(a) for a in args)})")
            init(self, *args, **kw)
        return checked
    return wrap


def path_text(value: object) -> object:
    """A path as the text a user writes (``'./x'``, not ``PosixPath('x')``); other values as they are."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


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
