"""The local sandbox: a persistent shell on this machine, inside bubblewrap when it is installed.

With ``bwrap`` (``isolation == "bwrap"``) the shell sees only what programs need, read-only, plus
the workspace (bound at the same path, so paths mean the same inside and out) and a private
``/tmp``; it runs unprivileged in its own user, pid and network namespaces (see
``sandboxes/bwrap.py``), in a cgroup with the Docker sandbox's limits where the host allows
(``sandboxes/limits.py``). Without ``bwrap`` (``isolation == "none"``) commands run on the host
as they are: a warning says so, the run records say so, and the agent's API keys are scrubbed
from what ``/proc/<agent pid>/environ`` shows.

Why one module over 450 lines: the shell process, the kill logic that finds a command's whole
tree (session, pid namespace or cgroup) and the file API share one workspace and one process.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any, Literal

from agentkit.errors import SandboxError
from agentkit.sandboxes.base import DirEntry, ExecResult, checked_env, keywords_only, path_text
from agentkit.sandboxes.bwrap import MountPlan
from agentkit.sandboxes.envscrub import scrub_initial_environ
from agentkit.sandboxes.limits import Cgroup, Limits, join_and_exec
from agentkit.sandboxes import safefs
from agentkit.sandboxes.paths import resolve_inside
from agentkit.sandboxes.session import SessionLimits, ShellSession, Stream

log = logging.getLogger(__name__)

_warned_unisolated = False
_bwrap_ok: bool | None = None
_bwrap_userns = True  # whether bwrap may use a user namespace (see bwrap_available)
_live: "weakref.WeakSet[LocalSandbox]" = weakref.WeakSet()
_unclosed: "weakref.WeakSet[LocalSandbox]" = weakref.WeakSet()  # made and not closed yet


_MOUNT_RACE_TRIES = 4


def _mount_race(text: str) -> bool:
    """bwrap failed to bind a mount that came or went while it bound the whole tree (a Docker
    container starting or stopping); over in milliseconds, so worth another try."""
    return "bwrap: Can't" in text and "mount" in text


def _probe(exe: str, userns: bool) -> bool:
    ns = ["--unshare-user", "--uid", "1000", "--gid", "1000"] if userns else []
    argv = [exe, *ns, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc", "--dev", "/dev", "true"]
    for attempt in range(_MOUNT_RACE_TRIES):  # a lost mount race is not "cannot run here"
        r = subprocess.run(argv, capture_output=True, timeout=20)
        if r.returncode == 0 or not _mount_race(r.stderr.decode(errors="replace")):
            break
        time.sleep(0.05 * (attempt + 1))
    if r.returncode != 0:
        log.info("bwrap%s cannot run here: %s", " with a user namespace" if userns else "",
                 r.stderr.decode(errors="replace").strip())
    return r.returncode == 0


def bwrap_available() -> bool:
    """Whether ``bwrap`` is installed and can actually create a sandbox here (cached).

    A user namespace is preferred (commands then run as uid 1000 without capabilities). Where the
    host forbids them, a setuid bwrap still isolates a non-root user; root without one would
    stay root inside, so that counts as unavailable.
    """
    global _bwrap_ok, _bwrap_userns
    if _bwrap_ok is None:
        exe = shutil.which("bwrap")
        try:
            _bwrap_userns = exe is not None and _probe(exe, userns=True)
            _bwrap_ok = _bwrap_userns or (exe is not None and os.geteuid() != 0 and _probe(exe, userns=False))
        except (OSError, subprocess.TimeoutExpired):
            _bwrap_ok = False
    return _bwrap_ok


class _ProcStream(Stream):
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def read(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(65536)

    async def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                log.warning("local shell %s did not exit after SIGKILL", self.proc.pid)
        # Close the pipes now, in this loop: left to the garbage collector they would be closed
        # after the loop is gone ("Event loop is closed").
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            transport.close()


def _stat_fields(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgrp, session) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    try:
        return int(rest[1]), int(rest[2]), int(rest[3])
    except (IndexError, ValueError):
        return None


def _all_pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def _ns_pid(pid: int) -> int | None:
    """The pid a process has in its innermost pid namespace (what ``$$`` shows inside bwrap)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def session_members(leader: int) -> list[int]:
    """Pids in session ``leader`` (what a command started, unless it called setsid)."""
    out = []
    for pid in _all_pids():
        st = _stat_fields(pid)
        if st and st[2] == leader:
            out.append(pid)
    return out


def _pidns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def pidns_members(ns: str) -> list[int]:
    """Pids in the pid namespace ``ns`` (a sandbox's, however its processes detached)."""
    return [pid for pid in _all_pids() if _pidns(pid) == ns]


def kill_members(members: Callable[[], list[int]], protect: set[int], rounds: int = 50) -> int:
    """Kill every process ``members()`` lists except ``protect``; returns the count.

    The first pass kills outright (so the shell sees its job killed, not stopped); processes that
    appear after it (a fork bomb's children) are stopped, since stopped processes cannot fork,
    and killed once no new ones appear.
    """
    seen: set[int] = set()
    for n in range(rounds):
        fresh = [pid for pid in members() if pid not in protect and pid not in seen]
        if not fresh:
            break
        for pid in fresh:
            try:
                os.kill(pid, signal.SIGKILL if n == 0 else signal.SIGSTOP)
            except ProcessLookupError:
                pass
        seen.update(fresh)
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # killed processes hold their pid (and a place under the pids limit) until they are reaped;
    # wait for that, briefly, so the next command can start programs at once
    deadline = time.monotonic() + 2.0
    while seen and time.monotonic() < deadline and any(p in seen for p in members()):
        time.sleep(0.01)
    return len(seen)


def kill_session_members(leader: int, protect: set[int], rounds: int = 50) -> int:
    """Kill every process in session ``leader`` except ``protect`` (see ``kill_members``)."""
    return kill_members(lambda: session_members(leader), protect, rounds)


class LocalSession(ShellSession):
    def __init__(self, sandbox: "LocalSandbox", limits: SessionLimits) -> None:
        super().__init__(sandbox.workspace, sandbox.env, limits)
        self.sb = sandbox
        self.proc: asyncio.subprocess.Process | None = None
        self._host_shell_pid: int | None = None

    async def start(self) -> None:
        for attempt in range(_MOUNT_RACE_TRIES):
            try:
                return await super().start()
            except SandboxError as e:
                raced = self.sb.isolated and _mount_race(str(e))
                if not raced or attempt == _MOUNT_RACE_TRIES - 1:
                    raise
                log.info("sandbox start lost a mount race (see _mount_race), trying again: %s", e)
                await asyncio.sleep(0.05 * (attempt + 1))

    def _argv(self) -> list[str]:
        shell = ["bash", "--noprofile", "--norc"]
        if self.sb.isolated:
            shell = ["bwrap", *self.sb.mounts.args(userns=_bwrap_userns), "--", *shell]
        if self.sb.cgroup is not None:
            shell = join_and_exec(self.sb.cgroup.procs_files, shell)
        return shell

    def _init_lines(self) -> list[str]:
        # rlimits only where no cgroup holds the session; set inside the namespaces, so that
        # ``ulimit -u`` counts the sandbox's processes, not all of this user's
        if self.sb.cgroup is None and self.sb.isolated:
            prefix = self.sb.resource_limits.ulimit_prefix()
            return [prefix + " 2>/dev/null"] if prefix else []
        return []

    async def _spawn(self) -> Stream:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "USER", "LOGNAME")}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self._argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, cwd=self.sb.workspace, env=env, start_new_session=True)
        except FileNotFoundError as e:
            raise SandboxError(f"cannot start the local shell: {e.filename} not found; install bash") from e
        self._host_shell_pid = None
        return _ProcStream(self.proc)

    def _find_host_shell(self) -> int | None:
        if self._host_shell_pid is None and self.proc is not None and self.shell_pid is not None:
            if not self.sb.isolated:
                self._host_shell_pid = self.shell_pid
            else:
                for pid in _all_pids():
                    st = _stat_fields(pid)
                    if st and st[2] == self.proc.pid and _ns_pid(pid) == self.shell_pid:
                        self._host_shell_pid = pid
                        break
        return self._host_shell_pid

    def _members(self) -> list[int]:
        """Every process of this session: its cgroup, else its session plus its pid namespace."""
        if self.sb.cgroup is not None:
            return self.sb.cgroup.pids()
        assert self.proc is not None
        pids = set(session_members(self.proc.pid))
        shell = self._find_host_shell()
        ns = _pidns(shell) if shell and self.sb.isolated else None
        if ns is not None and ns != _pidns(os.getpid()):
            pids.update(pidns_members(ns))
        return sorted(pids)

    async def _kill(self, include_shell: bool) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            if self.sb.cgroup is not None:
                self.sb.cgroup.kill_all()
            return 0
        leader = self.proc.pid
        if include_shell:
            members = self._members()
            try:
                os.killpg(leader, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return await asyncio.to_thread(kill_members, lambda: members + self._members(), set())
        shell = self._find_host_shell()
        protect = {leader}
        pid = shell
        while pid and pid not in (leader, 1):  # the shell and its ancestors (bwrap's init)
            protect.add(pid)
            st = _stat_fields(pid)
            pid = st[0] if st else None
        return await asyncio.to_thread(kill_members, self._members, protect)

    async def _save_output(self, name: str, data: bytes) -> str | None:
        host_dir = os.path.join(self.sb.tmp_dir, "agentkit-output")
        os.makedirs(host_dir, exist_ok=True)
        with open(os.path.join(host_dir, name), "wb") as f:
            f.write(data)
        inside = "/tmp" if self.sb.isolated else self.sb.tmp_dir
        return f"{inside}/agentkit-output/{name}"


class LocalSandbox:
    """A workspace directory plus a persistent shell on this machine (bwrap-isolated when possible).

    Keyword arguments only (``LocalSandbox(workspace=PATH)``), like ``DockerSandbox``: a
    positional argument is a ``TypeError`` naming the call to write.

    ``workspace``: a directory to work in (used in place), or None for a fresh temporary one that
    is deleted on ``close()``. ``isolate``: "auto" uses bwrap when it works, True requires it,
    False never uses it. ``network``: allow network access inside bwrap (off by default, as in
    the Docker sandbox). ``mem_limit``, ``pids_limit``, ``cpus``: the session's resources, with
    the Docker sandbox's defaults (a cgroup where the host allows, else rlimits; None lifts one).
    ``ro_paths``: more host folders to show read-only (a toolchain that is not on ``PATH``).
    """

    kind = "local"

    @keywords_only(lambda name, value: f"{name}(workspace={path_text(value)!r})")
    def __init__(self, *, workspace: str | os.PathLike[str] | None = None,
                 isolate: bool | Literal["auto"] = "auto", network: bool = False,
                 env: dict[str, str] | None = None, timeout: float | None = 120.0,
                 idle_timeout: float | None = None, output_cap: int = 16_000,
                 max_output: int = 32 * 1024 * 1024, mem_limit: str | int | None = "2g",
                 pids_limit: int | None = 512, cpus: float | None = 2.0,
                 ro_paths: list[str] | None = None) -> None:
        self._own_workspace = workspace is None
        if workspace is None:
            workspace = tempfile.mkdtemp(prefix="agentkit-ws-")
        ws = os.path.realpath(os.fspath(workspace))
        if not os.path.isdir(ws):
            given = os.fspath(workspace)
            hint = (f"; LocalSandbox(workspace=PATH) takes a host folder: for the image {given!r} use "
                    f"DockerSandbox(image={given!r}, workspace=PATH)" if "/" not in given and ":" in given else "")
            raise SandboxError(f"workspace {ws} is not a directory; create it or pass another path{hint}")
        self.workspace: str = ws
        if isolate == "auto":
            self.isolated: bool = bwrap_available()
        elif isolate:
            if not bwrap_available():
                raise SandboxError("isolate=True needs bubblewrap: install it (apt-get install bubblewrap) "
                                   "or use isolate='auto'")
            self.isolated = True
        else:
            self.isolated = False
        self.network = network
        self.env = checked_env(env)  # a name goes into the shell's export line as it is
        self.resource_limits = Limits(mem_limit=mem_limit, pids_limit=pids_limit, cpus=cpus)
        self.resource_limits.mem_bytes  # a bad size fails here, not at start
        self.cgroup: Cgroup | None = None
        self.tmp_dir = tempfile.mkdtemp(prefix="agentkit-tmp-")
        os.makedirs(os.path.join(self.tmp_dir, "home"), exist_ok=True)
        self.meta_dir = tempfile.mkdtemp(prefix="agentkit-meta-")  # mount sources the shell can't write
        self.mounts = MountPlan(ws, self.tmp_dir, self.meta_dir, os.environ.get("PATH", ""),
                                network=network, extra_ro=ro_paths or ())
        if not self.isolated:
            self.env.setdefault("TMPDIR", self.tmp_dir)
        self.limits = SessionLimits(timeout=timeout, idle_timeout=idle_timeout, output_cap=output_cap,
                                    max_output=max_output)
        self.session = LocalSession(self, self.limits)
        self._started = False
        self._closed = False
        # folders made here go when the sandbox is closed, collected, or at exit, whichever comes first
        owned = [self.tmp_dir, self.meta_dir] + ([ws] if self._own_workspace else [])
        self._remove_dirs = weakref.finalize(self, _remove_dirs, owned)
        _unclosed.add(self)

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the shell (``async with`` does this); commands start it on first use too."""
        if self._started:
            return
        global _warned_unisolated
        if not self.isolated and not _warned_unisolated:
            _warned_unisolated = True
            warnings.warn("LocalSandbox is not isolated: commands run directly on this machine "
                          "(install bubblewrap and use isolate='auto', or use the Docker sandbox).",
                          RuntimeWarning, stacklevel=3)
        if not self.isolated:
            scrub_initial_environ()
        self.cgroup = await asyncio.to_thread(Cgroup.create, self.resource_limits)
        await self.session.start()
        self._started = True
        _live.add(self)

    async def close(self) -> None:
        """Stop the shell and release what the sandbox holds (``async with`` does this)."""
        if self._closed:
            return
        self._closed = True
        await self.session.close()
        _live.discard(self)
        _unclosed.discard(self)
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)
        self._remove_dirs()

    async def __aenter__(self) -> "LocalSandbox":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- commands --------------------------------------------------------------------
    async def run(self, command: str, timeout: float | None = None,
                  idle_timeout: float | None = None) -> ExecResult:
        """Run ``command`` in the persistent shell (cwd and exports persist); a timeout (total, or no output
        for ``idle_timeout``) kills the command's process group and keeps its output so far.
        """
        if not self._started:
            await self.start()
        return await self.session.run(command, timeout=timeout, idle_timeout=idle_timeout)

    # ----- files -----------------------------------------------------------------------
    # Every open resolves beneath the workspace (safefs): never a path checked first and opened
    # later, which a process in the sandbox could swap for a symlink in between.
    def resolve(self, path: str) -> str:
        """The host path for ``path``, for messages; refuses anything outside the workspace."""
        return resolve_inside(self.workspace, path)

    async def read_file(self, path: str, max_bytes: int = safefs.MAX_READ_BYTES) -> bytes:
        """A regular file's bytes; ``safefs.FileTooLarge`` beyond ``max_bytes``."""
        return await asyncio.to_thread(safefs.read_file, self.workspace, path, max_bytes)

    async def read_lines(self, path: str, first: int, last: int,
                         max_bytes: int = safefs.MAX_READ_BYTES) -> safefs.LineSlice:
        """Lines ``first``..``last`` of a file of any size, in bounded memory (beyond the protocol)."""
        return await asyncio.to_thread(safefs.read_lines, self.workspace, path, first, last, max_bytes)

    async def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file in the workspace, creating its folders."""
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        await asyncio.to_thread(safefs.write_file, self.workspace, path, payload)

    async def list_dir(self, path: str = ".") -> list[DirEntry]:
        """The entries of a folder in the workspace."""
        return await asyncio.to_thread(safefs.list_dir, self.workspace, path)

    async def copy_out(self, dest: str | os.PathLike[str]) -> str:
        """Copy the workspace to the host directory ``dest`` (same API as DockerSandbox)."""
        dest_path = os.path.realpath(os.fspath(dest))
        await asyncio.to_thread(shutil.copytree, self.workspace, dest_path, symlinks=True, dirs_exist_ok=True)
        return dest_path

    @property
    def isolation(self) -> str:
        """What stands between commands and the host: "bwrap" or "none" (recorded with each run)."""
        return "bwrap" if self.isolated else "none"

    def __repr__(self) -> str:
        return f"LocalSandbox(workspace={self.workspace!r}, isolation={self.isolation!r})"


def _remove_dirs(paths: list[str]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _release_transport(proc: asyncio.subprocess.Process) -> None:
    """The shell's pipes and process handle, released without their event loop (gone at exit):
    closing them through asyncio would raise "Event loop is closed" and leave ResourceWarnings."""
    transport: Any = getattr(proc, "_transport", None)
    if transport is None:
        return
    try:
        loop_closed = transport._loop.is_closed()
        for pipe in list(getattr(transport, "_pipes", {}).values()):
            pt = getattr(pipe, "pipe", None)
            if pt is not None and getattr(pt, "_pipe", None) is not None and loop_closed:
                pt._pipe.close()
                pt._pipe, pt._closing = None, True
        popen = transport._proc
        if popen is not None and popen.returncode is None:
            try:
                popen.returncode = os.waitpid(popen.pid, 0)[1]
            except ChildProcessError:
                popen.returncode = -9
        if loop_closed:
            transport._closed = True
    except (AttributeError, OSError):  # another Python's asyncio internals: leave them to it
        pass


@atexit.register
def _kill_leftovers() -> None:
    """Interpreter exit: kill shells of sandboxes that were never closed (bwrap dies with us anyway),
    release their pipes, remove their folders, and say once how to close them."""
    left = [sb for sb in list(_unclosed) if not sb._closed]
    if any(sb.session.proc is not None for sb in left):
        # asyncio's child watcher reports each killed shell as "Loop ... that handles pid ... is closed"
        logging.getLogger("asyncio").setLevel(logging.ERROR)
    for sb in left:
        proc = sb.session.proc
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            kill_session_members(proc.pid, set(), rounds=3)
        if proc is not None:
            _release_transport(proc)
        if sb.cgroup is not None:
            sb.cgroup.remove()
        sb._remove_dirs()
    if any(sb._started for sb in left):
        print("agentkit: warning: a LocalSandbox was not closed; use `async with LocalSandbox(...)` or "
              "`await sandbox.close()`. Its shell was killed and its temporary folders removed at exit.",
              file=sys.stderr)

