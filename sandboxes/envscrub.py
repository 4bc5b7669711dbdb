"""Keep the agent's API keys out of ``/proc/<agent pid>/environ`` when commands run unisolated.

Without bubblewrap the shell is an ordinary child of the agent, and ``cat /proc/$PPID/environ``
shows the environment the agent was started with, keys included: the kernel serves that file
from the original block at the top of the process's stack, whatever ``os.environ`` says later.
We overwrite the values of secret-looking variables in that block in place. Python's
``os.environ`` (a copy made at start-up) keeps working, and C code asking ``getenv`` is pointed
at a fresh copy first. This closes the easy read, not a determined one (same-user processes
can still read our memory): ``isolation: none`` is recorded with every such run.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re

log = logging.getLogger(__name__)

SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$|^AGENTKIT_API_KEY$",
                         re.IGNORECASE)
_done = False


def _env_block() -> tuple[int, int] | None:
    """(start, end) addresses of this process's original environment block (/proc/self/stat)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        fields = data[data.rfind(b")") + 2:].split()
        # fields 50 and 51 of stat(5) are env_start and env_end; ``fields`` starts at field 3
        return int(fields[47]), int(fields[48])
    except (OSError, IndexError, ValueError):
        return None


def scrub_initial_environ() -> list[str]:
    """Blank secret values in the original environment block; returns the names scrubbed."""
    global _done
    if _done:
        return []
    _done = True
    block = _env_block()
    if block is None or block[1] <= block[0]:
        return []
    start, end = block
    raw = ctypes.string_at(start, end - start)
    names: list[str] = []
    offset = 0
    for entry in raw.split(b"\0"):
        name, eq, value = entry.partition(b"=")
        if eq and value and SECRET_NAME.search(name.decode("ascii", "replace")):
            key = name.decode("ascii", "replace")
            current = os.environ.get(key)
            if current is not None:
                os.putenv(key, current)  # libc's getenv now reads a copy outside the block
            ctypes.memset(start + offset + len(name) + 1, ord("*"), len(value))
            names.append(key)
        offset += len(entry) + 1
    if names:
        log.debug("scrubbed %s from /proc/self/environ", ", ".join(names))
    return names
