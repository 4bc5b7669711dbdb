"""Workspace files opened without ever following a symlink out of the workspace.

Checking a path and then opening it by name is a race: a sandboxed process that keeps swapping a
folder for a symlink wins it within a second. So every open here starts from a descriptor of the
workspace and resolves the rest of the path beneath it:

- ``openat2`` with ``RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`` where the kernel has it (Linux 5.6+,
  probed once): the kernel refuses, atomically, any step that would leave the workspace;
- otherwise, and whenever openat2 refuses a path (EXDEV), a walk one component at a time with
  ``O_NOFOLLOW`` from held directory descriptors: the kernel never follows a symlink for us; we
  read each one and resolve its target ourselves, beneath the workspace.

Symlinks inside the workspace are followed while every step stays inside: relative ones
(``lib -> ../src/lib``) and absolute ones naming a path in the workspace (the sandbox mounts the
workspace at the same path, so ``/ws/src`` means the same inside and out). Anything else
(``/etc``, ``../../..``, ``/proc/self/root``) is a ``SandboxError`` saying the path is outside
the workspace. A folder the walk holds cannot be moved out from under it by the sandbox: the
workspace is a bind mount there, and rename across mounts fails.

Only regular files are read or written, and only directories listed: a FIFO, socket or device
is refused before a byte moves (opened ``O_NONBLOCK`` and checked with fstat, so a FIFO with no
writer cannot block). Reads stop at ``MAX_READ_BYTES``; ``read_lines`` reads a line range of a
bigger file with bounded memory.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from typing import NamedTuple

from agentkit.errors import SandboxError
from agentkit.sandboxes.base import DirEntry
from agentkit.sandboxes.paths import outside, relative_inside

__all__ = ["MAX_READ_BYTES", "MAX_SCAN_BYTES", "FileTooLarge", "LineSlice", "list_dir", "open_beneath",
           "read_file", "read_lines", "write_file"]

# Bigger than any hand-written source file, small enough that a few agents editing at once stay in
# a few hundred MB; bigger files are for `view_range` (read_lines) or the shell.
MAX_READ_BYTES = 8 * 1024 * 1024
# How far read_lines scans for the first line asked for before giving up (time, not memory).
MAX_SCAN_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024
_MAX_LINKS = 40  # the kernel's own limit on symlinks in one lookup
_MAX_MKDIR_TRIES = 100  # a racing process that keeps deleting what we create cannot loop us forever
_MAX_RACED = 8  # looks again at an entry that changed kind under us, then gives up

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}  # the same in the generic table and on x86_64
_DIR_STEP = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_openat2_ok: bool | None = None  # None until probed; tests set False to exercise the walk


class FileTooLarge(SandboxError):
    """A file bigger than a read may take; ``size`` and ``limit`` are in bytes."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        self.path, self.size, self.limit = path, size, limit
        super().__init__(f"{path} is {size:,} bytes, more than the {limit:,} bytes read at once; read part "
                         "of it (the editor's `view_range`) or use the shell (grep -n, sed -n, head)")


class LineSlice(NamedTuple):
    """What ``read_lines`` found."""

    data: bytes  # the lines asked for, newlines included
    cut: bool  # stopped at max_bytes before the last line asked for
    total: int | None  # the file's line count when the read reached its end, else None


# ----- resolving beneath the workspace -----------------------------------------------------------
class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None


def _openat2(dir_fd: int, rel: str, flags: int, mode: int) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    creates = flags & os.O_CREAT or flags & os.O_TMPFILE == os.O_TMPFILE  # O_TMPFILE includes O_DIRECTORY
    how = _OpenHow(flags, mode if creates else 0,
                   _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2[platform.machine()]), ctypes.c_int(dir_fd),
                       ctypes.c_char_p(os.fsencode(rel)), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(fd)


def _have_openat2(dir_fd: int) -> bool:
    """Whether openat2 works here (kernel ≥ 5.6, not blocked by seccomp); probed once."""
    global _openat2_ok
    if _openat2_ok is None:
        ok = platform.machine() in _SYS_OPENAT2
        if ok:
            try:
                os.close(_openat2(dir_fd, ".", os.O_PATH | os.O_CLOEXEC, 0))
            except OSError:  # ENOSYS on old kernels, EPERM/ENOSYS under seccomp
                ok = False
        _openat2_ok = ok
    return _openat2_ok


def _link_target(name: str, dir_fd: int) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:  # not a symlink (EINVAL), or gone
        return None


def _walk(root_fd: int, root: str, shown: str, rel: str, flags: int, mode: int, make_parents: bool) -> int:
    """``open_beneath`` by hand: one ``O_NOFOLLOW`` step at a time, symlinks resolved by us.

    ``stack`` holds a descriptor for each folder from the root down, so ``..`` pops back to
    where we came from (the physical parent) and can never climb above the root.
    """
    stack = [os.dup(root_fd)]
    todo = list(reversed(rel.split("/")))  # next component last
    links = made = raced = 0
    via = ""  # the last symlink followed, for the message
    try:
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) == 1:
                    raise outside(shown, root, via)
                os.close(stack.pop())
                continue
            here = stack[-1]
            try:
                if todo:
                    stack.append(os.open(name, _DIR_STEP, dir_fd=here))
                    continue
                fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=here)
                if not flags & os.O_PATH or not stat.S_ISLNK(os.fstat(fd).st_mode):
                    return fd
                os.close(fd)  # O_PATH | O_NOFOLLOW opened the symlink itself: resolve it below
                err = errno.ELOOP
            except OSError as e:
                err = e.errno or 0
                if err == errno.ENOENT and make_parents and todo and made < _MAX_MKDIR_TRIES:
                    made += 1
                    try:
                        os.mkdir(name, 0o777, dir_fd=here)
                    except FileExistsError:
                        pass
                    todo.append(name)
                    continue
            target = _link_target(name, here) if err in (errno.ELOOP, errno.ENOTDIR) else None
            if target is None:
                if err in (errno.ELOOP, errno.ENOTDIR) and raced < _MAX_RACED:
                    raced += 1  # a symlink a moment ago, not now: it is being swapped; look again
                    todo.append(name)
                    continue
                raise OSError(err, os.strerror(err), shown)
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), shown)
            via = f" (it goes through the symlink {name!r} -> {target!r})"
            if target.startswith("/"):
                base = root.rstrip("/")
                if target != base and not target.startswith(base + "/"):
                    raise outside(shown, root, via)
                while len(stack) > 1:
                    os.close(stack.pop())
                target = target[len(base):]
            todo.extend(reversed(target.split("/")))
        return os.open(".", flags | os.O_CLOEXEC, mode, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def open_beneath(root: str, path: str, flags: int, mode: int = 0o666, *, make_parents: bool = False) -> int:
    """A descriptor for ``path`` (see ``relative_inside``) opened with ``flags``, never leaving ``root``.

    ``root`` must be a real path (no symlinks in it). ``make_parents`` creates missing folders on
    the way, each beneath the one before. OS errors (ENOENT, EISDIR, ...) come out as ``OSError``;
    a path that leads outside, as ``SandboxError``.
    """
    rel = relative_inside(root, path)
    shown = os.fspath(path)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _have_openat2(root_fd):
            for _ in range(16):
                try:
                    return _openat2(root_fd, rel, flags | os.O_CLOEXEC, mode)
                except OSError as e:
                    if e.errno == errno.EAGAIN:  # a rename raced the lookup; the kernel asks us to retry
                        continue
                    if e.errno == errno.EXDEV or (e.errno == errno.ENOENT and make_parents):
                        break  # the walk decides: an absolute symlink into the workspace, or folders to make
                    raise OSError(e.errno, e.strerror, shown) from None
        return _walk(root_fd, root, shown, rel, flags, mode, make_parents)
    finally:
        os.close(root_fd)


# ----- the file API ------------------------------------------------------------------------------
def _not_regular(path: str, mode: int | None) -> SandboxError:
    kind = ("a named pipe (FIFO)" if mode is not None and stat.S_ISFIFO(mode) else
            "a socket" if mode is not None and stat.S_ISSOCK(mode) else
            "a device" if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else
            "not a regular file (a socket, named pipe or device)")
    what = kind if kind.startswith("not") else f"{kind}, not a regular file"
    return SandboxError(f"{path} is {what}; only regular files can be read or written here "
                        "(inspect it with the shell, e.g. `ls -l`)")


def _open_regular(root: str, path: str, flags: int, *, make_parents: bool = False) -> int:
    """Open a regular file, non-blocking; anything else is refused without blocking."""
    try:
        fd = open_beneath(root, path, flags | os.O_NONBLOCK | os.O_NOCTTY, make_parents=make_parents)
    except OSError as e:
        if e.errno != errno.ENXIO:  # a socket, or a FIFO with no reader opened for writing
            raise
        try:
            probe = open_beneath(root, path, os.O_PATH)
            try:
                mode: int | None = os.fstat(probe).st_mode
            finally:
                os.close(probe)
        except OSError:
            mode = None
        raise _not_regular(path, mode) from None
    st_mode = os.fstat(fd).st_mode
    if stat.S_ISREG(st_mode):
        os.set_blocking(fd, True)
        return fd
    os.close(fd)
    if stat.S_ISDIR(st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    raise _not_regular(path, st_mode)


def read_file(root: str, path: str, max_bytes: int = MAX_READ_BYTES) -> bytes:
    """The whole of a regular file, refused (``FileTooLarge``) beyond ``max_bytes``."""
    fd = _open_regular(root, path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise FileTooLarge(path, size, max_bytes)
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew while we read
                raise FileTooLarge(path, total, max_bytes)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_lines(root: str, path: str, first: int, last: int, max_bytes: int = MAX_READ_BYTES,
               max_scan: int = MAX_SCAN_BYTES) -> LineSlice:
    """Lines ``first``..``last`` (1-based; ``last`` < 0: to the end) of a regular file of any size.

    Memory stays within ``max_bytes`` plus one chunk; lines before ``first`` are counted, not kept,
    and a ``first`` further in than ``max_scan`` bytes is refused (a view that slow is the shell's job).
    """
    fd = _open_regular(root, path, os.O_RDONLY)
    try:
        out = bytearray()
        line, scanned, ends_nl = 1, 0, True  # ``line``: the number of the line being read
        while chunk := os.read(fd, _CHUNK):
            scanned, ends_nl, pos = scanned + len(chunk), chunk.endswith(b"\n"), 0
            if line < first:  # skip whole lines, counting them
                n = chunk.count(b"\n")
                if line + n < first:
                    line += n
                    if scanned >= max_scan:
                        raise SandboxError(f"line {first} of {path} is beyond its first {max_scan:,} bytes; "
                                           f"read that far in with the shell (e.g. sed -n '{first},+50p')")
                    continue
                while line < first:
                    pos = chunk.index(b"\n", pos) + 1
                    line += 1
            end = len(chunk)
            if last < 0:
                line += chunk.count(b"\n", pos)
            else:
                cur = pos
                while line <= last and (nl := chunk.find(b"\n", cur)) >= 0:
                    cur, line = nl + 1, line + 1
                if line > last:
                    end = cur
            out += chunk[pos:end]
            if len(out) > max_bytes:
                return LineSlice(bytes(out[:max_bytes]), True, None)
            if 0 <= last < line:
                return LineSlice(bytes(out), False, None)
        return LineSlice(bytes(out), False, line - 1 if ends_nl else line)
    finally:
        os.close(fd)


def write_file(root: str, path: str, data: bytes) -> None:
    """Replace a regular file's content in place (its mode and links kept), making missing folders."""
    fd = _open_regular(root, path, os.O_WRONLY | os.O_CREAT, make_parents=True)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def list_dir(root: str, path: str) -> list[DirEntry]:
    """The entries of a folder, sorted by name; symlinks are reported, not followed."""
    fd = open_beneath(root, path, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK)
    out = []
    try:
        with os.scandir(fd) as it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                kind = ("symlink" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else
                        "file" if stat.S_ISREG(st.st_mode) else "other")
                out.append(DirEntry(name=e.name, kind=kind, size=st.st_size if kind == "file" else 0))
    finally:
        os.close(fd)
    return sorted(out, key=lambda d: d.name)
