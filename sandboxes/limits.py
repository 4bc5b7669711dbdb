"""Resource limits for the local sandbox: a cgroup of its own where the host lets us make one.

A fork bomb or a 4 GB allocation must end only the command that made it, never the host. The
Docker sandbox gets that from the engine; locally we make a cgroup per sandbox (v2 when the
unified hierarchy is mounted and delegated to us, else the v1 ``pids``/``memory``/``cpu``
controllers, as on Docker-in-VM hosts and CI) and move the sandbox's first process into it
before it ``exec``s bubblewrap, so nothing it starts can be outside. Where neither works the
shell applies rlimits instead (``ulimit -u`` processes, ``-d`` data memory), which is weaker:
``-u`` counts per user and is not enforced for root. The defaults match the Docker sandbox.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
from dataclasses import dataclass

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
_counter = itertools.count()


@dataclass(frozen=True)
class Limits:
    """Memory, process count and CPUs for one sandbox session (None: no limit)."""

    mem_limit: str | int | None = "2g"
    pids_limit: int | None = 512
    cpus: float | None = 2.0

    @property
    def mem_bytes(self) -> int | None:
        return parse_size(self.mem_limit)

    def ulimit_prefix(self) -> str:
        """Shell words that apply the rlimit fallback (``ulimit`` sets soft and hard at once)."""
        parts = []
        if self.pids_limit:
            parts.append(f"ulimit -u {int(self.pids_limit)}")
        if self.mem_bytes:
            parts.append(f"ulimit -d {self.mem_bytes // 1024}")
        return "; ".join(parts)


def parse_size(value: str | int | None) -> int | None:
    """Bytes in a Docker-style size: ``2g``, ``512m``, ``1024k`` or a plain number."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", value.lower())
    if not m:
        raise ValueError(f"invalid memory size {value!r}: use a number with k, m or g, e.g. '2g'")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * scale)


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(",") if ctrls else [""]:
                    out[c] = path
    except (OSError, ValueError):
        pass
    return out


def _prune_stale(parent: str) -> None:
    """Remove empty cgroups left by agentkit processes that died without closing their sandboxes."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        m = re.fullmatch(r"agentkit-(\d+)-\d+", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            try:
                os.rmdir(os.path.join(parent, name))  # fails, harmlessly, while it holds processes
            except OSError:
                pass


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class Cgroup:
    """One cgroup (one directory per v1 controller, or one v2 directory) owned by one sandbox."""

    def __init__(self, dirs: list[str], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @classmethod
    def create(cls, limits: Limits) -> "Cgroup | None":
        """A fresh cgroup with ``limits`` applied, or None where the host does not let us."""
        if not (limits.pids_limit or limits.mem_bytes or limits.cpus):
            return None
        name = f"agentkit-{os.getpid()}-{next(_counter)}"
        own = _own_cgroups()
        for make in (cls._create_v2, cls._create_v1):
            try:
                cg = make(limits, name, own)
            except OSError as e:
                log.debug("cgroup via %s not possible: %s", make.__name__, e)
                continue
            if cg is not None:
                return cg
        return None

    @classmethod
    def _create_v2(cls, limits: Limits, name: str, own: dict[str, str]) -> "Cgroup | None":
        if not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")) or "" not in own:
            return None
        parent = os.path.join(CGROUP_ROOT, own[""].lstrip("/"))
        enabled = open(os.path.join(parent, "cgroup.subtree_control")).read().split()
        if "pids" not in enabled:
            return None  # enabling it ourselves would break the no-internal-processes rule
        _prune_stale(parent)
        path = os.path.join(parent, name)
        os.mkdir(path)
        cg = cls([path], 2)
        try:
            if limits.pids_limit:
                _write(os.path.join(path, "pids.max"), str(limits.pids_limit))
            if limits.mem_bytes and "memory" in enabled:
                _write(os.path.join(path, "memory.max"), str(limits.mem_bytes))
                _write(os.path.join(path, "memory.swap.max"), "0")
            if limits.cpus and "cpu" in enabled:
                _write(os.path.join(path, "cpu.max"), f"{int(limits.cpus * 100_000)} 100000")
        except OSError:
            cg.remove()
            raise
        return cg

    @classmethod
    def _create_v1(cls, limits: Limits, name: str, own: dict[str, str]) -> "Cgroup | None":
        if "pids" not in own or not os.path.isdir(os.path.join(CGROUP_ROOT, "pids")):
            return None
        settings: list[tuple[str, str, str]] = []
        if limits.pids_limit:
            settings.append(("pids", "pids.max", str(limits.pids_limit)))
        if limits.mem_bytes:
            settings.append(("memory", "memory.limit_in_bytes", str(limits.mem_bytes)))
            settings.append(("memory", "memory.memsw.limit_in_bytes", str(limits.mem_bytes)))
        if limits.cpus:
            settings.append(("cpu", "cpu.cfs_period_us", "100000"))
            settings.append(("cpu", "cpu.cfs_quota_us", str(int(limits.cpus * 100_000))))
        dirs: dict[str, str] = {}
        cg = cls([], 1)
        try:
            for ctrl in ("pids", "memory", "cpu"):
                if ctrl not in own or not os.path.isdir(os.path.join(CGROUP_ROOT, ctrl)):
                    continue
                parent = os.path.join(CGROUP_ROOT, ctrl, own[ctrl].lstrip("/"))
                _prune_stale(parent)
                path = os.path.join(parent, name)
                os.mkdir(path)
                dirs[ctrl] = path
                cg.dirs.append(path)
            for ctrl, knob, value in settings:
                if ctrl not in dirs:
                    continue
                try:
                    _write(os.path.join(dirs[ctrl], knob), value)
                except OSError:
                    if knob != "memory.memsw.limit_in_bytes":  # absent without swap accounting
                        raise
        except OSError:
            cg.remove()
            raise
        # the pids directory first: it lists the members (see pids())
        cg.dirs.sort(key=lambda d: not d.startswith(os.path.join(CGROUP_ROOT, "pids")))
        return cg

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to join this cgroup."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        """Host pids of every process in the cgroup, however it detached itself."""
        try:
            with open(self.procs_files[0]) as f:
                return [int(line) for line in f if line.strip()]
        except (OSError, ValueError, IndexError):
            return []

    def kill_all(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def remove(self) -> None:
        """Kill what is left and delete the directories (rmdir only works once they are empty)."""
        for _ in range(50):
            self.kill_all()
            if not self.pids():
                break
            os.sched_yield()
        for d in self.dirs:
            try:
                os.rmdir(d)
            except OSError as e:
                log.debug("cannot remove cgroup %s: %s", d, e)
        self.dirs = []


def join_and_exec(procs_files: list[str], argv: list[str]) -> list[str]:
    """argv that moves its own process into the cgroup, then becomes ``argv`` (same pid)."""
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *procs_files, "--", *argv]
