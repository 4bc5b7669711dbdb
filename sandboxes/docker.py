"""The Docker sandbox: a container with safe defaults and one persistent shell inside it.

The container's main process is ``sleep infinity`` under docker's init; the shell is a single
``docker exec`` whose stdin stays open, attached over the engine's socket (no exec per command).
Defaults are restrictive: no network, a non-root user when the image has one, memory/CPU/pids
limits, every capability dropped except KILL (used only by the root helper that kills a timed-out
command's processes), no-new-privileges. The workspace is copied in with ``put_archive`` (or
bind-mounted when asked) and ``copy_out`` brings it back. Containers carry the label
``agentkit.sandbox=1``; ``close()`` removes them, as does interpreter exit and
``agentkit sandboxes prune``.

Why one module over 450 lines: the container, its shell session, the resident root helper that
kills timed-out commands and the file API all go through one container handle (the copy-back's
untrusted tar extraction is apart, in ``copyback.py``).
"""

from __future__ import annotations

import asyncio
import atexit
import io
import logging
import os
import posixpath
import secrets
import shlex
import socket
import struct
import tarfile
import tempfile
import time
from typing import Any

from agentkit.errors import SandboxError
from agentkit.sandboxes.base import DirEntry, ExecResult, checked_env, keywords_only, path_text
from agentkit.sandboxes.copyback import extract_workspace
from agentkit.sandboxes.session import SessionLimits, ShellSession, Stream, ansi_c_quote

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "agentkit-sandbox:latest"
LABEL = "agentkit.sandbox"
_created: set[str] = set()  # containers this process created and has not removed yet

# Run by root bash inside the container (CAP_KILL). `k SID ALL ORPHANS` kills the shell's process
# tree: its session's members (the shell too when ALL is 1), its direct children (even those that
# left with setsid), every descendant of a process already caught and, with ORPHANS=1 (a container
# of our own), every orphan adopted by init that was not there at the start (double-fork daemons).
# Each is stopped the moment it is found, with its whole process group (one signal stops a fork
# bomb: a stopped process cannot fork, nor starve this scan of CPU), until a pass finds none; then
# all are killed. The shell's own children are killed at once instead, so the shell sees its job
# killed, not stopped.
# Builtins only (no fork), so it works with the container at its pids limit.
_KILL_FN = r"""
declare -A base
for d in /proc/[0-9]*; do
  read -r l < "$d/stat" 2>/dev/null || continue; set -- ${l##*) }
  [[ $2 = 1 ]] && base[${d#/proc/}]=1
done
k() {
  local sid=$1 all=$2 orphans=$3 n=-1 end=$((SECONDS + 20)) d p l fresh sig
  local -A seen=() groups=()
  while (( SECONDS < end && ++n < 1000 )); do
    fresh=0
    for d in /proc/[0-9]*; do
      p=${d#/proc/}
      [[ -n ${seen[$p]} || $p = 1 || $p = $$ ]] && continue
      [[ $p = "$sid" && $all != 1 ]] && continue
      read -r l < "$d/stat" 2>/dev/null || continue
      set -- ${l##*) }
      if [[ $4 = "$sid" || $2 = "$sid" || -n ${seen[$2]} ]] \
          || [[ $orphans = 1 && $2 = 1 && -z ${base[$p]} ]]; then
        sig=STOP; [[ $n = 0 && $2 = "$sid" ]] && sig=KILL
        kill -$sig "$p" 2>/dev/null
        if [[ -z ${groups[$3]} && ($3 != "$sid" || $all = 1) ]]; then
          groups[$3]=1; kill -$sig -- "-$3" 2>/dev/null  # its whole group at once
        fi
        seen[$p]=1; fresh=1
      fi
    done
    (( fresh )) || break
  done
  for p in "${!groups[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
  (( ${#seen[@]} )) && kill -KILL "${!seen[@]}" 2>/dev/null
  # the killed hold their pids (and places under the pids limit) until init reaps them: wait for
  # that, up to 3 s, so the next command starts in an empty container (a builtin loop: no fork)
  local until=$(( ${EPOCHREALTIME/./} + 3000000 )) left
  while :; do
    left=0
    for p in "${!seen[@]}"; do [[ -e /proc/$p ]] && { left=1; break; }; done
    (( left && ${EPOCHREALTIME/./} < until )) || break
  done
  echo "killed ${#seen[@]}"
}
"""
# The resident killer: started with the sandbox, it waits on stdin for `SID ALL ORPHANS` lines, so
# a kill needs no new process (a `docker exec` fails while a fork bomb holds every pid).
_KILLER = _KILL_FN + 'echo ready\nwhile read -r a b c; do k "$a" "$b" "$c"; done\n'


def _client(docker_host: str | None = None, timeout: int = 60) -> Any:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as e:  # pragma: no cover - docker is a core dependency
        raise SandboxError("the docker Python package is missing: pip install docker") from e
    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except DockerException as e:
        where = docker_host or os.environ.get("DOCKER_HOST") or "the default socket"
        raise SandboxError(f"cannot reach a Docker engine at {where}: start one (scripts/start-dockerd) "
                           "or set DOCKER_HOST") from e


def docker_unavailable_reason(image: str = DEFAULT_IMAGE, docker_host: str | None = None) -> str | None:
    """Why a DockerSandbox cannot start here (no engine, no image), or None when it can."""
    try:
        from docker.errors import DockerException, ImageNotFound
    except ImportError:
        return "the docker Python SDK is not installed"
    try:
        client = _client(docker_host, timeout=10)
    except SandboxError as e:
        return str(e)
    try:
        client.images.get(image)
    except ImageNotFound:
        return f"image {image} is missing; run sandboxes/build-offline-image.sh"
    except DockerException as e:
        return f"Docker engine error: {str(e)[:120]}"
    finally:
        client.close()
    return None


def create_container(image: str = DEFAULT_IMAGE, *, network: bool = False,
                     mem_limit: str | None = "2g", cpus: float | None = 2.0, pids_limit: int | None = 512,
                     mounts: dict[str, dict[str, str]] | None = None, labels: dict[str, str] | None = None,
                     docker_host: str | None = None, client: Any = None) -> str:
    """Create and start a sandbox container with safe defaults; returns its id.

    The main process (``sleep infinity``) runs as root so that ``docker exec -u root`` keeps
    CAP_KILL for the kill helper; the shell itself runs as the sandbox user (see DockerSandbox).
    """
    from docker.errors import APIError, ImageNotFound

    client = client or _client(docker_host)
    kw: dict[str, Any] = dict(
        command=["sleep", "infinity"],
        detach=True,
        init=True,
        labels={LABEL: "1", "agentkit.pid": str(os.getpid()), "agentkit.host": socket.gethostname(),
                **(labels or {})},
        network_mode="bridge" if network else "none",
        cap_drop=["ALL"],
        cap_add=["KILL"],
        security_opt=["no-new-privileges"],
        privileged=False,
        volumes=mounts or {},
        user="0",
    )
    if mem_limit:
        kw["mem_limit"] = mem_limit
        kw["memswap_limit"] = mem_limit  # no swap: the limit is the limit
    if cpus:
        kw["nano_cpus"] = int(cpus * 1e9)
    if pids_limit:
        kw["pids_limit"] = pids_limit
    container = None
    try:
        client.images.get(image)  # never pull implicitly: a missing image is the user's to build
        kw.pop("detach")
        container = client.containers.create(image, **kw)
        _created.add(container.id)
        container.start()
    except ImageNotFound as e:
        raise SandboxError(f"Docker image {image} not found: build it with sandboxes/build-offline-image.sh "
                           "(or docker build -t agentkit-sandbox sandboxes/)") from e
    except APIError as e:
        if container is not None:
            remove_container(container.id, client=client)
        raise SandboxError(f"cannot start a container from {image}: {e.explanation or e}") from e
    return container.id


def remove_container(container_id: str, docker_host: str | None = None, client: Any = None) -> None:
    """Force-remove a container (ignored if it is already gone)."""
    from docker.errors import DockerException, NotFound

    try:
        (client or _client(docker_host)).api.remove_container(container_id, force=True, v=True)
    except NotFound:
        pass
    except DockerException as e:
        log.warning("could not remove container %s: %s", container_id[:12], e)
    _created.discard(container_id)


def is_leftover(labels: dict[str, str]) -> bool:
    """Whether a sandbox container's owner is gone: its process on this host no longer exists.

    Containers owned by a live process here, or by another host, are not leftovers.
    """
    pid, host = labels.get("agentkit.pid"), labels.get("agentkit.host")
    if not pid or not pid.isdigit():
        return True
    if host and host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def prune(docker_host: str | None = None, client: Any = None, *, all_: bool = False,
          dry_run: bool = False) -> list[str]:
    """Remove leftover sandbox containers (owner process gone; every one with ``all_``).

    Returns the ids removed (or, with ``dry_run``, that would be).
    """
    client = client or _client(docker_host)
    removed = []
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        if all_ or is_leftover(c.labels):
            if not dry_run:
                remove_container(c.id, client=client)
            removed.append(c.id)
    return removed


@atexit.register
def _remove_leftovers() -> None:
    if not _created:
        return
    try:
        client = _client(timeout=10)
    except SandboxError:
        return
    for cid in list(_created):
        remove_container(cid, client=client)


class _ExecStream(Stream):
    """The multiplexed stdout/stderr stream of an attached exec, read without threads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: Any) -> None:
        self.reader = reader
        self.writer = writer
        self._keep = keep  # the SDK's socket wrapper and response: closing them would close ours

    async def read(self) -> bytes:
        try:
            header = await self.reader.readexactly(8)
        except (asyncio.IncompleteReadError, ConnectionError):
            return b""
        size = struct.unpack(">BxxxL", header)[1]
        try:
            return await self.reader.readexactly(size) if size else await self.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        try:
            self.writer.close()
        except Exception as e:
            log.debug("closing exec socket: %s", e)


async def open_exec_stream(api: Any, container_id: str, cmd: list[str], *, user: str = "",
                           workdir: str | None = None, environment: dict[str, str] | None = None) -> _ExecStream:
    """Start ``cmd`` in the container with stdin open and return its attached byte stream."""
    exec_id = await asyncio.to_thread(
        api.exec_create, container_id, cmd, stdin=True, stdout=True, stderr=True, tty=False,
        user=user, workdir=workdir, environment=environment)
    sock_io = await asyncio.to_thread(api.exec_start, exec_id["Id"], socket=True)
    raw = getattr(sock_io, "_sock", sock_io)
    if not isinstance(raw, socket.socket):
        raise SandboxError("this Docker connection type cannot be attached asynchronously; "
                           "use a unix:// or tcp:// DOCKER_HOST")
    reader, writer = await asyncio.open_connection(sock=raw, limit=1 << 20)
    return _ExecStream(reader, writer, keep=(sock_io, exec_id))


class DockerSession(ShellSession):
    def __init__(self, sandbox: "DockerSandbox", limits: SessionLimits) -> None:
        super().__init__(sandbox.workspace, sandbox.env, limits)
        self.sb = sandbox
        if sandbox.pids_limit:
            self.proc_guard = max(int(sandbox.pids_limit * 0.9), 8)

    async def _spawn(self) -> Stream:
        # setsid: the shell leads its own session, which is how its processes are found and killed.
        return await open_exec_stream(self.sb.api, self.sb.container_id,
                                      ["setsid", "-w", "bash", "--noprofile", "--norc"],
                                      user=self.sb.user, workdir="/")

    async def _kill(self, include_shell: bool) -> int | None:
        if self.shell_pid is None:
            return 0
        args = [str(self.shell_pid), "1" if include_shell else "0", "1" if self.sb._own_container else "0"]
        try:
            return await self.sb._resident_kill(" ".join(args))
        except Exception as e:  # not started or gone: fall back to one exec per kill
            log.debug("resident killer unavailable: %s", e)
        cmd = ["bash", "--noprofile", "--norc", "-c", _KILL_FN + 'k "$@"', "k", *args]
        for attempt in range(5):
            try:
                out = await asyncio.to_thread(self.sb.exec_simple, cmd, "root")
                return int(out.split()[-1])
            except Exception as e:  # the container may be at its pids limit for a moment
                log.debug("kill helper failed (attempt %d): %s", attempt + 1, e)
                await asyncio.sleep(0.2 * (attempt + 1))
        # Last resort: restart the container. Its filesystem (the workspace) survives.
        log.warning("could not kill processes in %s; restarting the container", self.sb.container_id[:12])
        await asyncio.to_thread(self.sb.api.restart, self.sb.container_id, timeout=0)
        return None

    async def _save_output(self, name: str, data: bytes) -> str | None:
        await asyncio.to_thread(self.sb.put_files, "/tmp", {f"agentkit-output/{name}": data})
        return f"/tmp/agentkit-output/{name}"


def _looks_like_a_path(image: object) -> bool:
    """A host path given where an image name belongs (``DockerSandbox(image=work)``)."""
    if isinstance(image, os.PathLike):
        return True
    if not isinstance(image, str):
        return False
    return image.startswith(("/", "./", "../", "~", ".")) or os.path.isdir(image)


class DockerSandbox:
    """A container sandbox with a persistent shell: ``DockerSandbox(image=..., workspace=PATH)``.

    Keyword arguments only, like ``LocalSandbox(workspace=PATH)``: a positional argument is a
    ``TypeError`` naming the call to write, and a host path passed as the image fails at
    construction with a message that says so.

    ``workspace``: a host directory copied into ``workdir`` (or bind-mounted with ``mount=True``);
    None starts with an empty ``workdir``. ``container``: attach to an existing container (e.g. one
    shared by many tests) instead of creating one; it is then not removed on ``close()``.
    """

    kind = "docker"
    isolated = True

    isolation = "docker"  # recorded with each run, beside the local sandbox's "bwrap" / "none"

    @keywords_only(lambda name, value: f"{name}(workspace={path_text(value)!r}) for a host folder"
                   if _looks_like_a_path(value) else f"{name}(image={value!r})")
    def __init__(self, *, image: str = DEFAULT_IMAGE, workspace: str | os.PathLike[str] | None = None,
                 workdir: str = "/workspace", mount: bool = False, network: bool = False,
                 user: str | None = None, mem_limit: str | None = "2g", cpus: float | None = 2.0,
                 pids_limit: int | None = 512, env: dict[str, str] | None = None,
                 timeout: float | None = 120.0, idle_timeout: float | None = None, output_cap: int = 16_000,
                 max_output: int = 32 * 1024 * 1024, container: str | None = None,
                 docker_host: str | None = None, labels: dict[str, str] | None = None) -> None:
        if not posixpath.isabs(workdir):
            raise SandboxError(f"workdir must be an absolute path inside the container, not {workdir!r}")
        if _looks_like_a_path(image):
            raise SandboxError(f"image={os.fspath(image)!r} is a host path, not an image name: pass the folder as "
                               "DockerSandbox(image=..., workspace=PATH)")
        self.image = image
        self.host_workspace = os.path.realpath(os.fspath(workspace)) if workspace is not None else None
        if self.host_workspace is not None and not os.path.isdir(self.host_workspace):
            raise SandboxError(f"workspace {self.host_workspace} is not a directory")
        if mount and self.host_workspace is None:
            raise SandboxError("mount=True needs a host workspace directory to mount")
        self.workspace: str = posixpath.normpath(workdir)
        self.mount = mount
        self.network = network
        self.user_arg = user
        self.mem_limit, self.cpus, self.pids_limit = mem_limit, cpus, pids_limit
        self.env = checked_env(env)  # a name goes into the shell's export line as it is
        self.docker_host = docker_host
        self.labels = labels
        self.container_id: str = container or ""
        self._own_container = container is None
        self.user = ""  # what exec runs as ("" = the image's user)
        self.uid: int | None = None
        self.gid: int | None = None
        self.limits = SessionLimits(timeout=timeout, idle_timeout=idle_timeout, output_cap=output_cap,
                                    max_output=max_output)
        self.client: Any = None
        self.api: Any = None
        self.session = DockerSession(self, self.limits)
        self._files: DockerSession | None = None  # a second shell for the file API's path checks
        self._killer: _ExecStream | None = None  # root bash running _KILLER (see _resident_kill)
        self._killer_lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self.start_seconds: float | None = None
        self.copy_notes: list[str] = []  # members the last copy_out left out, and why

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start the shell (``async with`` does this); commands start it on first use too."""
        if self._started:
            return
        t0 = time.monotonic()
        self.client = await asyncio.to_thread(_client, self.docker_host)
        self.api = self.client.api
        try:
            if self._own_container:
                await self._create()
            await asyncio.to_thread(self._resolve_user)
            await self._start_killer()  # before any command: then it needs no pid when one is due
            await self.session.start()
            # One round trip through the new shell instead of separate execs: ids and parent dir.
            parent = posixpath.dirname(self.workspace)
            probe = f"id -u; id -g; mkdir -p -- {ansi_c_quote(parent)}"
            if self.host_workspace is None and not self.mount:
                # nothing to copy: the shell can create an empty workdir itself, no archive needed
                probe += f"; mkdir -p -- {ansi_c_quote(self.workspace)} 2>/dev/null && [ -w {ansi_c_quote(self.workspace)} ] && echo ready"
            r = await self.session.run(probe, timeout=30)
            ids = r.output.split()
            try:
                self.uid, self.gid = int(ids[0]), int(ids[1])
            except (IndexError, ValueError) as e:
                raise SandboxError(f"cannot determine the sandbox user in {self.image}: {r.output[:200]!r}") from e
            if not self.mount and "ready" not in ids[2:]:
                await asyncio.to_thread(self._prepare_workdir)
            setup = f"cd -- {ansi_c_quote(self.workspace)}"
            lines = self.session._init_lines()
            if lines:
                setup = "; ".join(lines) + "; " + setup
            r = await self.session.run(setup, timeout=30)
            if r.exit_code != 0:
                raise SandboxError(f"cannot enter the workspace {self.workspace} in the container: {r.output[:200]}")
        except BaseException:
            await self._stop_killer()
            await self._remove()
            raise
        self._started = True
        self.start_seconds = time.monotonic() - t0

    async def _create(self) -> None:
        mounts = {self.host_workspace: {"bind": self.workspace, "mode": "rw"}} if self.mount else None
        self.container_id = await asyncio.to_thread(
            create_container, self.image, network=self.network, mem_limit=self.mem_limit,
            cpus=self.cpus, pids_limit=self.pids_limit, mounts=mounts, labels=self.labels, client=self.client)

    def _resolve_user(self) -> None:
        """Which user the shell runs as: the caller's choice, the host's for mounts, else the image's."""
        if self.user_arg is not None:
            user = self.user_arg
        elif self.mount:
            user = f"{os.getuid()}:{os.getgid()}"  # files written through the mount stay the host user's
        else:
            image_id = self.api.inspect_container(self.container_id)["Image"]
            user = self.api.inspect_image(image_id)["Config"].get("User") or self._regular_user() or "0"
        self.user = user

    def _regular_user(self) -> str | None:
        """The first ordinary account (uid 1000-59999 with a login shell) in the image, if any."""
        try:
            stream, _ = self.api.get_archive(self.container_id, "/etc/passwd")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r:") as tar:
                member = tar.next()
                f = tar.extractfile(member) if member else None
                text = f.read().decode(errors="replace") if f else ""
        except Exception as e:
            log.debug("cannot read /etc/passwd from the image: %s", e)
            return None
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) >= 7 and parts[2].isdigit() and 1000 <= int(parts[2]) < 60000 \
                    and not parts[6].endswith(("nologin", "false")):
                return parts[0]
        return None

    def _prepare_workdir(self) -> None:
        """Create the workdir owned by the sandbox user and copy the host workspace into it."""
        parent, name = posixpath.split(self.workspace)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            top = tarfile.TarInfo(name)
            top.type, top.mode = tarfile.DIRTYPE, 0o755
            top.uid, top.gid, top.mtime = self.uid or 0, self.gid or 0, int(time.time())
            tar.addfile(top)
            if self.host_workspace:
                for root, dirs, files in os.walk(self.host_workspace):
                    for entry in sorted(dirs) + sorted(files):
                        full = os.path.join(root, entry)
                        rel = os.path.relpath(full, self.host_workspace)
                        info = tar.gettarinfo(full, arcname=f"{name}/{rel}")
                        info.uid, info.gid, info.uname, info.gname = self.uid or 0, self.gid or 0, "", ""
                        if info.isreg():
                            with open(full, "rb") as f:
                                tar.addfile(info, f)
                        elif info.isdir() or info.issym():
                            tar.addfile(info)
        self.api.put_archive(self.container_id, parent, buf.getvalue())

    async def close(self) -> None:
        """Stop the shell and release what the sandbox holds (``async with`` does this)."""
        if self._closed:
            return
        self._closed = True
        if self._own_container:
            # removing the container ends every process in it: no need to kill anything first
            for session in (self.session, self._files):
                if session is not None:
                    await session._drop_stream()
            await self._stop_killer()
            await self._remove()
        else:
            if self._files is not None:
                await self._files.close()
            # a shared container: leave it running but remove this sandbox's workdir
            if self._started and not self.mount and self.session.alive:
                try:
                    await self.session.run(f"cd / && rm -rf -- {ansi_c_quote(self.workspace)}", timeout=60)
                except Exception as e:
                    log.debug("could not remove %s: %s", self.workspace, e)
            await self.session.close()
            await self._stop_killer()
        if self.client is not None:
            self.client.close()

    async def _start_killer(self) -> None:
        stream = await open_exec_stream(self.api, self.container_id,
                                        ["bash", "--noprofile", "--norc", "-c", _KILLER], user="root")
        try:
            await self._killer_reply(stream, b"ready", 30)
        except BaseException:
            await stream.close()
            raise
        self._killer = stream

    async def _stop_killer(self) -> None:
        if self._killer is not None:
            await self._killer.close()  # its stdin ends, so its read loop ends
            self._killer = None

    @staticmethod
    async def _killer_reply(stream: _ExecStream, word: bytes, timeout: float) -> bytes:
        """The killer's next line starting with ``word``; raises on EOF or after ``timeout``."""
        buf = b""
        async with asyncio.timeout(timeout):
            while True:
                for line in buf.split(b"\n")[:-1]:
                    if line.startswith(word):
                        return line
                chunk = await stream.read()
                if not chunk:
                    raise SandboxError("the kill helper exited")
                buf += chunk

    async def _resident_kill(self, args: str) -> int:
        """Kill through the resident root killer (``SID ALL ORPHANS``); returns how many died.

        Started lazily again if it is gone, which fails at the pids limit; the caller falls back.
        """
        async with self._killer_lock:
            if self._killer is None:
                await self._start_killer()
            assert self._killer is not None
            try:
                await self._killer.write(f"{args}\n".encode())
                return int((await self._killer_reply(self._killer, b"killed ", 60)).split()[-1])
            except BaseException:
                await self._stop_killer()
                raise

    async def _remove(self) -> None:
        if self._own_container and self.container_id:
            await asyncio.to_thread(remove_container, self.container_id, client=self.client)

    async def __aenter__(self) -> "DockerSandbox":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----- helpers (sync; call through asyncio.to_thread) ---------------------------------
    def exec_simple(self, cmd: list[str], user: str = "") -> str:
        """Run one short command with ``docker exec`` and return its output; raises on failure."""
        res = self.api.exec_create(self.container_id, cmd, stdout=True, stderr=True, user=user)
        out = self.api.exec_start(res["Id"])
        code = self.api.exec_inspect(res["Id"]).get("ExitCode")
        if code not in (0, None):
            raise SandboxError(f"`{shlex.join(cmd)[:80]}` failed in the container ({code}): "
                               f"{out.decode(errors='replace').strip()[:200]}")
        return out.decode(errors="replace")

    def put_files(self, directory: str, files: dict[str, bytes], mode: int = 0o644) -> None:
        """Write files (relative names, parents created) under ``directory``, owned by the user."""
        buf = io.BytesIO()
        made: set[str] = set()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for rel, data in files.items():
                parts = rel.split("/")
                for i in range(1, len(parts)):
                    d = "/".join(parts[:i])
                    if d not in made:
                        made.add(d)
                        di = tarfile.TarInfo(d)
                        di.type, di.mode = tarfile.DIRTYPE, 0o755
                        di.uid, di.gid, di.mtime = self.uid or 0, self.gid or 0, int(time.time())
                        tar.addfile(di)
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(data), mode, int(time.time())
                info.uid, info.gid = self.uid or 0, self.gid or 0
                tar.addfile(info, io.BytesIO(data))
        self.api.put_archive(self.container_id, directory, buf.getvalue())

    # ----- commands --------------------------------------------------------------------
    async def run(self, command: str, timeout: float | None = None,
                  idle_timeout: float | None = None) -> ExecResult:
        """Run ``command`` in the persistent shell (cwd and exports persist); a timeout (total, or no output
        for ``idle_timeout``) kills the command's process group and keeps its output so far.
        """
        if not self._started:
            await self.start()
        r = await self.session.run(command, timeout=timeout, idle_timeout=idle_timeout)
        if r.exit_code == 137 and not r.timed_out and self.mem_limit:
            r.note = (r.note + " " if r.note else "") + (
                "Exit code 137: the command was killed (SIGKILL), most likely for exceeding the "
                f"sandbox's memory limit ({self.mem_limit}).")
        return r

    # ----- files -----------------------------------------------------------------------
    async def _fs(self, script: str) -> str:
        """Run a short file-API helper in a second persistent shell (never the user's one)."""
        if not self._started:
            await self.start()
        if self._files is None or not self._files.alive:
            self._files = DockerSession(self, SessionLimits(timeout=30, output_cap=8 << 20))
            await self._files.start()
        r = await self._files.run(script, timeout=30)
        if r.exit_code is None:
            raise SandboxError(f"file operation failed in the container: {r.note}")
        return r.output

    async def _resolve(self, path: str) -> tuple[str, str, str]:
        """(real path, kind, octal mode) of ``path``; kind is "", "file", "dir" or "other"."""
        raw = os.fspath(path)
        if "\x00" in raw or "\n" in raw:
            raise SandboxError(f"invalid path {raw!r}")
        joined = raw if raw.startswith("/") else posixpath.join(self.workspace, raw)
        marker = secrets.token_hex(4)
        out = await self._fs(
            f"p=$(realpath -m -- {ansi_c_quote(joined)}) && w=$(realpath -m -- {ansi_c_quote(self.workspace)}) && "
            f"printf '{marker}%s\\n%s\\n' \"$p\" \"$w\" && "
            "if [ -d \"$p\" ]; then echo dir; elif [ -f \"$p\" ]; then echo file; "
            "elif [ -e \"$p\" ]; then echo other; else echo; fi && stat -c %a -- \"$p\" 2>/dev/null; true")
        lines = out.split(marker, 1)[-1].split("\n")
        real, root, kind = lines[0], lines[1], lines[2]
        mode = lines[3] if len(lines) > 3 else ""
        if not real.startswith("/") or (real != root and not real.startswith(root.rstrip("/") + "/")):
            raise SandboxError(f"path {raw!r} is outside the workspace {self.workspace}; use a path inside it")
        return real, kind, mode

    async def read_file(self, path: str) -> bytes:
        """The bytes of a file in the workspace (a path relative to it, or absolute inside it)."""
        real, kind, _ = await self._resolve(path)
        if kind == "":
            raise FileNotFoundError(2, "No such file or directory", path)
        if kind == "dir":
            raise IsADirectoryError(21, "Is a directory", path)
        return await asyncio.to_thread(self._get_file, real, path)

    def _get_file(self, real: str, shown: str) -> bytes:
        from docker.errors import NotFound

        try:
            stream, _ = self.api.get_archive(self.container_id, real)
        except NotFound as e:
            raise FileNotFoundError(2, "No such file or directory", shown) from e
        with tempfile.SpooledTemporaryFile(max_size=32 << 20) as tmp:
            for chunk in stream:
                tmp.write(chunk)
            tmp.seek(0)
            with tarfile.open(fileobj=tmp, mode="r|") as tar:
                for member in tar:
                    if member.isdir():
                        raise IsADirectoryError(21, "Is a directory", shown)
                    f = tar.extractfile(member)
                    if f is None:
                        raise SandboxError(f"{shown} is not a regular file")
                    return f.read()
        raise FileNotFoundError(2, "No such file or directory", shown)

    async def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file in the workspace, creating its folders."""
        real, kind, mode = await self._resolve(path)
        if kind == "dir":
            raise IsADirectoryError(21, "Is a directory", path)
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        parent, name = posixpath.split(real)
        await self._fs(f"mkdir -p -- {ansi_c_quote(parent)}")
        file_mode = int(mode, 8) if kind == "file" and mode.isdigit() else 0o644
        await asyncio.to_thread(self.put_files, parent, {name: payload}, file_mode)

    async def list_dir(self, path: str = ".") -> list[DirEntry]:
        """The entries of a folder in the workspace."""
        real, kind, _ = await self._resolve(path)
        if kind == "":
            raise FileNotFoundError(2, "No such file or directory", path)
        if kind != "dir":
            raise NotADirectoryError(20, "Not a directory", path)
        out = await self._fs(f"find {ansi_c_quote(real)} -mindepth 1 -maxdepth 1 -printf '%y\\t%s\\t%f\\n'")
        kinds = {"f": "file", "d": "dir", "l": "symlink"}
        entries = []
        for line in out.splitlines():
            parts = line.split("\t", 2)
            if len(parts) != 3:
                continue
            k = kinds.get(parts[0], "other")
            entries.append(DirEntry(name=parts[2], kind=k, size=int(parts[1]) if k == "file" else 0))  # type: ignore[arg-type]
        return sorted(entries, key=lambda e: e.name)

    async def copy_out(self, dest: str | os.PathLike[str]) -> str:
        """Copy the container's workspace to the host directory ``dest`` (created); returns it.

        The archive comes from the untrusted container: see ``extract_workspace``; members left out
        are listed in ``copy_notes``.
        """
        dest_path = os.path.realpath(os.fspath(dest))
        os.makedirs(dest_path, exist_ok=True)
        await asyncio.to_thread(self._copy_out, dest_path)
        return dest_path

    def _copy_out(self, dest: str) -> None:
        stream, _ = self.api.get_archive(self.container_id, self.workspace)
        with tempfile.TemporaryFile() as tmp:
            for chunk in stream:
                tmp.write(chunk)
            tmp.seek(0)
            with tarfile.open(fileobj=tmp, mode="r:") as tar:
                self.copy_notes = extract_workspace(tar, dest, posixpath.basename(self.workspace))
        for note in self.copy_notes[:20]:
            log.warning("copy-back left out %s", note)

    def __repr__(self) -> str:
        return f"DockerSandbox(image={self.image!r}, container={self.container_id[:12]!r}, workdir={self.workspace!r})"
