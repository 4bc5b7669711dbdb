"""Bringing a container's workspace back: a tar from the container, extracted without trusting it.

Every member is checked and written by us with no-follow opens under a directory descriptor, not
left to tarfile's filters (Python 3.11.7 predates the fix for CVE-2025-4517): a symlink is
recreated as a symlink and never written through, names that could leave the folder, links out
of it, devices and fifos are left out with a note, setuid bits are dropped.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile

__all__ = ["extract_workspace", "member_parts"]


class _Skip(Exception):
    """A tar member left out of the copy-back; the message says why (reported, never fatal)."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def member_parts(name: str, top: str) -> list[str]:
    """The components of archive path ``name`` below ``top``; raises _Skip for any name that could
    leave it. Checked here, not left to tarfile's filters (3.11.7 predates CVE-2025-4517's fix)."""
    if "\x00" in name:
        raise _Skip("NUL in the name")
    if name.startswith("/"):
        raise _Skip("absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Skip("'..' in the path")
    if not parts or parts[0] != top:
        raise _Skip(f"not inside the workspace folder {top}")
    return parts[1:]


def _open_dir(root_fd: int, parts: list[str], make: bool) -> int:
    """Open folder ``parts`` below ``root_fd`` one component at a time with O_NOFOLLOW, so a symlink
    on the way (from the host or the archive) is never followed; creates missing ones if ``make``."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not make:
                    raise _Skip(f"{part} is missing") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:  # ELOOP / ENOTDIR: a symlink or a file
                raise _Skip(f"{part} is a symlink or not a folder: never written through") from e
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _clear(dir_fd: int, name: str, *, keep_dir: bool = False) -> bool:
    """Unlink a file or symlink at ``name`` so nothing is written through it; True if a folder is
    there (kept when ``keep_dir``, else the member is skipped: host folders are never deleted)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return True
        raise _Skip("a folder is in the way")
    os.unlink(name, dir_fd=dir_fd)
    return False


def _extract_member(tar: tarfile.TarFile, m: tarfile.TarInfo, root_fd: int, top: str,
                    files: set[tuple[str, ...]]) -> None:
    """Write one member below ``root_fd``. Symlinks are recreated as links, never followed; an
    existing file or symlink at the destination is replaced, never written through."""
    parts = member_parts(m.name, top)
    if not parts:
        return  # the workspace folder itself
    if not (m.isdir() or m.issym() or m.islnk() or m.isreg()):
        raise _Skip("device, fifo or other special file")
    if m.issym() and "\x00" in m.linkname:
        raise _Skip("NUL in the link target")
    mode = m.mode & 0o777  # setuid, setgid and sticky bits dropped
    parent = _open_dir(root_fd, parts[:-1], make=True)
    name = parts[-1]
    try:
        if m.isdir():
            if not _clear(parent, name, keep_dir=True):
                os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            try:
                os.fchmod(fd, mode | 0o700)
            finally:
                os.close(fd)
        elif m.issym():
            _clear(parent, name)
            os.symlink(m.linkname, name, dir_fd=parent)
        elif m.islnk():  # only to a regular file this extraction wrote
            try:
                src = member_parts(m.linkname, top)
            except _Skip as e:
                raise _Skip(f"hard link to {m.linkname!r}: {e}") from None
            if tuple(src) not in files:
                raise _Skip(f"hard link to {m.linkname!r}, not a file of the workspace")
            src_dir = _open_dir(root_fd, src[:-1], make=False)
            try:
                _clear(parent, name)
                os.link(src[-1], name, src_dir_fd=src_dir, dst_dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(src_dir)
            files.add(tuple(parts))
        else:
            _clear(parent, name)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as out:
                data = tar.extractfile(m)
                if data is not None:
                    shutil.copyfileobj(data, out, 1 << 20)
                os.fchmod(out.fileno(), mode)
                os.utime(out.fileno(), (m.mtime, m.mtime))
            files.add(tuple(parts))
    finally:
        os.close(parent)


def extract_workspace(tar: tarfile.TarFile, dest: str, top: str) -> list[str]:
    """Extract the members under ``top/`` of an untrusted archive into ``dest``; returns a note
    for each member left out (unsafe names, links out, devices) instead of failing the copy."""
    notes: list[str] = []
    files: set[tuple[str, ...]] = set()
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for m in tar:
            try:
                _extract_member(tar, m, root_fd, top, files)
            except _Skip as e:
                notes.append(f"{m.name!r}: {e}")
            except (OSError, ValueError, OverflowError) as e:  # one bad member must not lose the rest
                notes.append(f"{m.name!r}: {getattr(e, 'strerror', None) or e}")
    finally:
        os.close(root_fd)
    return notes
