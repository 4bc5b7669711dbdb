"""Sandbox drivers (installed as ``agentkit.sandboxes``).

``make_sandbox("local")`` or ``make_sandbox("docker")`` builds one from a CLI-style name; both
kinds are async context managers with the same shell and file API (see ``base.Sandbox``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from agentkit.errors import ConfigError
from agentkit.sandboxes.base import DirEntry, ExecResult, Sandbox
from agentkit.sandboxes.local import LocalSandbox

if TYPE_CHECKING:  # seen by type checkers and the docs; loaded on first use (it imports the docker SDK)
    from agentkit.sandboxes.docker import DockerSandbox

__all__ = ["DirEntry", "DockerSandbox", "ExecResult", "LocalSandbox", "Sandbox", "make_sandbox"]

KINDS = ("local", "docker")


def make_sandbox(kind: str = "local", workspace: str | os.PathLike[str] | None = None, **kw: Any) -> Sandbox:
    """A not-yet-started sandbox of ``kind`` ("local" or "docker") on ``workspace``."""
    if kind == "local":
        return LocalSandbox(workspace=workspace, **kw)
    if kind == "docker":
        from agentkit.sandboxes.docker import DockerSandbox

        return DockerSandbox(workspace=workspace, **kw)
    raise ConfigError(f"unknown sandbox kind {kind!r}; use one of: {', '.join(KINDS)}")


def __getattr__(name: str) -> Any:
    # DockerSandbox imports the docker SDK; load it only when asked for.
    if name == "DockerSandbox":
        from agentkit.sandboxes.docker import DockerSandbox

        return DockerSandbox
    raise AttributeError(name)
