"""Confining file-API paths to a workspace on the host filesystem.

A path is resolved the way the OS would open it (symlinks followed, ``..`` applied) and must
land inside the workspace root; anything else is refused before the file is touched.
"""

from __future__ import annotations

import os

from agentkit.errors import SandboxError


def resolve_inside(root: str, path: str | os.PathLike[str]) -> str:
    """Absolute real path of ``path`` (relative to ``root`` unless absolute), refused outside root."""
    raw = os.fspath(path)
    if "\x00" in raw:
        raise SandboxError(f"invalid path {raw!r}: it contains a NUL byte")
    real_root = os.path.realpath(root)
    joined = raw if os.path.isabs(raw) else os.path.join(real_root, raw)
    real = os.path.realpath(joined)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise SandboxError(f"path {raw!r} is outside the workspace {root}; use a path inside it")
    return real

