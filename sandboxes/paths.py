"""Confining file-API paths to a workspace on the host filesystem.

``relative_inside`` maps a path the model gives (absolute inside the workspace, or relative to
it) to a path relative to the workspace, by text alone: what it names on disk is decided when the
file is opened, beneath a descriptor of the workspace (``safefs``), because a check by name and a
later open by name can be raced. ``resolve_inside`` is the by-name answer, kept for messages only.
"""

from __future__ import annotations

import os

from agentkit.errors import SandboxError


def _check(raw: str) -> None:
    if "\x00" in raw:
        raise SandboxError(f"invalid path {raw!r}: it contains a NUL byte")


def outside(raw: str, root: str, why: str = "") -> SandboxError:
    """The one error for a path that leaves the workspace (callers and tests match its words)."""
    return SandboxError(f"path {raw!r} is outside the workspace {root}{why}; use a path inside it")


def relative_inside(root: str, path: str | os.PathLike[str]) -> str:
    """``path`` relative to ``root`` ("." for the root itself), by text; ``..`` is left for the open."""
    raw = os.fspath(path)
    _check(raw)
    if not os.path.isabs(raw):
        return raw or "."
    base = root.rstrip(os.sep)
    if raw != root and raw != base and not raw.startswith(base + os.sep):
        raise outside(raw, root)
    return raw[len(base):].lstrip(os.sep) or "."


def resolve_inside(root: str, path: str | os.PathLike[str]) -> str:
    """Absolute real path of ``path`` (relative to ``root`` unless absolute), refused outside root.

    Racy by nature (the answer can change before anyone opens it): for messages, never for opening.
    """
    raw = os.fspath(path)
    _check(raw)
    real_root = os.path.realpath(root)
    joined = raw if os.path.isabs(raw) else os.path.join(real_root, raw)
    real = os.path.realpath(joined)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise outside(raw, root)
    return real
