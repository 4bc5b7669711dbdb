"""The bubblewrap command line of the local sandbox: what a sandboxed command can see.

Only what programs need is mounted, read-only: ``/usr`` and the ``/bin``, ``/sbin``, ``/lib*``
links or folders, ``/etc`` with every entry a normal user could not read covered by an empty
one (``shadow``, private keys), ``/opt``, and the toolchains on ``PATH`` that live elsewhere
(a pyenv or cargo folder). ``/tmp`` is the sandbox's own folder, ``/run`` and ``/var`` are
empty, the workspace is the one writable host folder, bound at its own path. Host homes,
``/root``, other runs' folders and every host socket (Docker's included) are simply absent.

``/proc`` is the sandbox's own (a new pid namespace) with ``/proc/sys`` bound read-only: a
writable ``kernel.core_pattern`` runs a program of the writer's choosing as root on the host.
Commands run as uid 1000 in a user namespace with no capabilities; files they create belong
to the user who runs agentkit, so the workspace stays theirs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

SANDBOX_UID = 1000
SANDBOX_GID = 1000
_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_TOOLCHAIN_DEPTH = 2  # how deep a toolchain folder is searched for unreadable entries to cover


def _unreadable(root: str, max_depth: int | None) -> list[tuple[str, bool]]:
    """Entries under ``root`` a user other than the owner cannot read: (path, is_dir).

    Secrets (``/etc/shadow``, ``/etc/ssl/private``, a cargo token) are readable to the sandbox
    otherwise, since its uid maps to the owner of agentkit's process. Sockets count too.
    """
    found: list[tuple[str, bool]] = []
    base_depth = root.rstrip("/").count("/")
    for top, dirs, files in os.walk(root):
        depth = top.rstrip("/").count("/") - base_depth
        keep = []
        for name in dirs:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and (st.st_mode & 0o005) != 0o005:
                found.append((path, True))
            elif max_depth is None or depth + 1 < max_depth:
                keep.append(name)
        dirs[:] = keep
        for name in files:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_ISSOCK(st.st_mode) or not st.st_mode & 0o004:
                found.append((path, False))
    return found


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def toolchain_roots(path_var: str, workspace: str) -> list[str]:
    """Folders outside the system tree that ``PATH`` needs: ``~/.pyenv`` for ``~/.pyenv/shims``,
    ``/opt/x`` for ``/opt/x/bin``; a ``bin`` folder brings its parent (the prefix with the
    libraries its programs load)."""
    roots: list[str] = []
    for entry in path_var.split(":"):
        if not entry or not os.path.isabs(entry):
            continue
        real = os.path.realpath(entry)
        if not os.path.isdir(real) or _under(real, _SYSTEM_DIRS):
            continue
        root = os.path.dirname(real) if os.path.basename(real) in ("bin", "sbin", "shims") else real
        if root in ("/", "/home", "/root", "/tmp", "/var", "/run") or root.count("/") < 2 and root != "/opt":
            root = real
        if _under(workspace, [root]):  # never the folder that holds the workspace (other runs)
            root = real
        if not _under(workspace, [root]):
            roots.append(root)
    # a venv's python is a link into its base interpreter's prefix
    for r in list(roots):
        cfg = os.path.join(r, "pyvenv.cfg")
        if os.path.isfile(cfg):
            home = _venv_home(cfg)
            prefix = os.path.dirname(os.path.realpath(home)) if home else ""
            if prefix and not _under(workspace, [prefix]) and not _under(prefix, _SYSTEM_DIRS):
                roots.append(prefix)
    out: list[str] = []
    for r in sorted(set(roots), key=len):
        if not _under(r, out):
            out.append(r)
    return out


def _venv_home(cfg: str) -> str | None:
    try:
        with open(cfg) as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() == "home":
                    return value.strip()
    except OSError:
        return None
    return None


class MountPlan:
    """The mount arguments for one sandbox; the /etc and toolchain scans are cached per process."""

    _etc_cover: list[tuple[str, bool]] | None = None
    _tool_cover: dict[str, list[tuple[str, bool]]] = {}

    def __init__(self, workspace: str, tmp_dir: str, meta_dir: str, path_var: str, *, network: bool,
                 extra_ro: Iterable[str] = ()) -> None:
        self.workspace, self.tmp_dir, self.meta_dir, self.network = workspace, tmp_dir, meta_dir, network
        self.toolchains = toolchain_roots(path_var, workspace) + [os.path.realpath(p) for p in extra_ro]
        self.empty_file = os.path.join(meta_dir, "empty")
        self.empty_dir = os.path.join(meta_dir, "empty.d")

    def _covers(self) -> list[tuple[str, bool]]:
        cls = MountPlan
        if cls._etc_cover is None:
            cls._etc_cover = _unreadable("/etc", None)
        out = list(cls._etc_cover)
        for root in self.toolchains:
            if root not in cls._tool_cover:
                cls._tool_cover[root] = _unreadable(root, _TOOLCHAIN_DEPTH)
            out += cls._tool_cover[root]
        return out

    def _identity_files(self) -> list[str]:
        """/etc/passwd and /etc/group with the sandbox user, so ``whoami`` and git work."""
        args: list[str] = []
        for name, line in (("passwd", f"agent:x:{SANDBOX_UID}:{SANDBOX_GID}:agent:/tmp/home:/bin/bash\n"),
                           ("group", f"agent:x:{SANDBOX_GID}:\n")):
            try:
                with open(f"/etc/{name}") as f:
                    text = f.read()
            except OSError:
                text = ""
            ids = {ln.split(":")[2] for ln in text.splitlines() if ln.count(":") >= 2}
            if str(SANDBOX_UID if name == "passwd" else SANDBOX_GID) not in ids:
                text = text + ("" if text.endswith("\n") or not text else "\n") + line
            dest = os.path.join(self.meta_dir, name)
            with open(dest, "w") as f:
                f.write(text)
            args += ["--ro-bind", dest, f"/etc/{name}"]
        return args

    def args(self, userns: bool = True) -> list[str]:
        """bwrap's options; ``userns=False`` only for a setuid bwrap run by a non-root user."""
        open(self.empty_file, "w").close()
        os.makedirs(self.empty_dir, exist_ok=True)
        a = ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)] if userns else []
        a += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--ro-bind", "/usr", "/usr"]
        for d in _SYSTEM_DIRS[2:]:
            if os.path.islink(d):
                a += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                a += ["--ro-bind", d, d]
        a += ["--ro-bind", "/etc", "/etc"]
        if os.path.isdir("/opt"):
            a += ["--ro-bind", "/opt", "/opt"]
        for root in self.toolchains:
            if not _under(root, ["/usr", "/etc", "/opt"]):
                a += ["--ro-bind", root, root]
        for path, is_dir in self._covers():
            a += ["--ro-bind", self.empty_dir if is_dir else self.empty_file, path]
        if userns:
            a += self._identity_files()
        a += ["--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
              "--tmpfs", "/run", "--tmpfs", "/var", "--dir", "/var/tmp", "--symlink", "/run", "/var/run",
              "--bind", self.tmp_dir, "/tmp", "--bind", self.workspace, self.workspace,
              "--chdir", self.workspace,
              "--setenv", "HOME", "/tmp/home", "--setenv", "TMPDIR", "/tmp",
              "--setenv", "USER", "agent", "--setenv", "LOGNAME", "agent"]
        if not self.network:
            a.append("--unshare-net")
        elif os.path.islink("/etc/resolv.conf"):  # e.g. into /run/systemd/resolve, empty here
            real = os.path.realpath("/etc/resolv.conf")
            a += ["--ro-bind-try", real, real]
        return a
