"""The code agent's working copy and the patch of what it changed.

The agent works on a copy of the user's repo (never the user's tree unless ``--in-place``):

- a git repo becomes a local clone at its HEAD (objects hardlinked, so it costs little more than a
  checkout) with the user's uncommitted changes applied (``git diff HEAD | git apply``) and its
  untracked, not ignored files copied, so ``.gitignore`` is honoured: no ``node_modules``,
  virtualenvs or build outputs;
- a folder that is not a git repo (or a folder inside one) is copied file by file, refused above a
  size limit (``--max-copy-size``).

Run folders (an earlier run's ``trajectory.jsonl``, ``.baseline.git``) are never copied. The baseline
is recorded in a separate git directory outside the workspace, so the agent's own git commands
cannot disturb it and repos that are not git repos get a patch too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from agentkit.errors import ConfigError, SandboxError

# Never part of the patch: caches the tests leave behind and the sandbox's saved outputs.
_EXCLUDES = ["__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/", ".agentkit/", ".venv/", "node_modules/"]
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".venv", "node_modules"}
DEFAULT_MAX_COPY_BYTES = 2_000_000_000
BYTES_PER_FILE = 10_000  # the file-count limit: one file per 10 kB of the size limit (200,000 for 2 GB)
NOTE_EVERY = 5000  # a progress note per this many files copied

Note = Callable[[str], None]


def check_repo(repo: str | Path) -> Path:
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise ConfigError(f"the repository {repo} is not a directory; pass repo=PATH with the repository to work on")
    return path.resolve()


def parse_size(text: str) -> int | None:
    """``--max-copy-size``: ``500M``, ``2G``, ``2GB``, ``1.5T``, plain bytes, or ``none`` (no limit)."""
    t = text.strip().lower()
    if t in ("none", "off", "0"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", t)
    if not m:
        raise ValueError(f"{text!r} is not a size; e.g. 500M, 2G, 10G or none")
    return int(float(m.group(1)) * 1000 ** " kmgt".index(m.group(2) or " "))


def _is_run_folder(path: Path) -> bool:
    return (path / "trajectory.jsonl").is_file() or (path / ".baseline.git").is_dir()


def copy_repo(repo: Path, dest: Path, skip: Path | None = None, *, max_bytes: int | None = DEFAULT_MAX_COPY_BYTES,
              note: Note | None = None) -> Path:
    """Make ``dest`` a working copy of ``repo`` (see the module docstring), leaving out caches, run
    folders and ``skip`` (the run's own output folder when it lies inside the repo, e.g. ``--out``)."""
    repo = Path(repo).resolve()
    if dest.exists():
        shutil.rmtree(dest)
    skip_path = Path(skip).resolve() if skip is not None else None
    top = _git_toplevel(repo)
    if top is not None and top == repo and _has_head(repo):
        _clone(repo, dest, skip_path, note)
    elif top is not None:  # a folder inside a repo: its tracked and untracked, not ignored files
        listed = _git_out(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
        _copy_files(repo, dest, [r for r in listed if r], skip_path, max_bytes, note)
    else:
        _copy_files(repo, dest, _walk(repo, skip_path), skip_path, max_bytes, note)
    return dest


def _git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _git_toplevel(repo: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=False)
    except FileNotFoundError:  # no git on this machine: a plain copy
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 and out.stdout.strip() else None


def _has_head(repo: Path) -> bool:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "-q", "--verify", "HEAD^{commit}"],
                          capture_output=True, check=False).returncode == 0


def _clone(repo: Path, dest: Path, skip: Path | None, note: Note | None) -> None:
    """A local clone at the user's HEAD plus their uncommitted changes and untracked, not ignored files."""
    head = _git_out(repo, "rev-parse", "HEAD").strip()
    branch = subprocess.run(["git", "-C", str(repo), "symbolic-ref", "-q", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    if note:
        note(f"workspace: cloning {repo} at {head[:12]} (git clone --local)")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    links = ["--no-hardlinks"] if _cross_device(repo, dest) else []
    for attempt in range(CLONE_ATTEMPTS):
        cloned = subprocess.run(["git", "clone", "-q", "--local", "--no-checkout", *links, str(repo), str(dest)],
                                capture_output=True, text=True, check=False, env=env)
        if cloned.returncode == 0:
            break
        # A `git gc --auto` that git started in the background after the user's last commit packs and
        # deletes loose objects while the clone links them ("failed to create link ...: No such file"):
        # wait for it to finish and clone again.
        shutil.rmtree(dest, ignore_errors=True)
        if attempt < CLONE_ATTEMPTS - 1:
            _wait_for_gc(repo)
    else:
        raise ConfigError(f"git clone of the repository {repo} failed: {' '.join(cloned.stderr.split())[:300]}")
    ws = ["git", "-C", str(dest), "-c", "advice.detachedHead=false"]
    subprocess.run([*ws, "remote", "remove", "origin"], capture_output=True, check=False)
    checkout = ["checkout", "-q", "-B", branch, head] if branch else ["checkout", "-q", "--detach", head]
    subprocess.run([*ws, *checkout], capture_output=True, check=True)
    diff = subprocess.run(["git", "-C", str(repo), "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"],
                          capture_output=True, check=True).stdout
    if diff:
        applied = subprocess.run([*ws, "apply", "--binary", "--whitespace=nowarn", "-"], input=diff,
                                 capture_output=True, check=False)
        if applied.returncode != 0:  # e.g. a submodule change: copy the changed files as they are
            changed = _git_out(repo, "diff", "HEAD", "--name-only", "-z", "--no-renames").split("\0")
            for rel in filter(None, changed):
                _copy_one(repo / rel, dest / rel)
    untracked = _git_out(repo, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
    _copy_files(repo, dest, [r for r in untracked if r], skip, None, note, fresh=False)


CLONE_ATTEMPTS = 3
GC_WAIT_S = 60.0  # the longest wait for a repository's background gc before cloning again


def _wait_for_gc(repo: Path) -> None:
    """Until the repository's ``gc.pid`` (a running ``git gc``) is gone, or ``GC_WAIT_S``."""
    common = subprocess.run(["git", "-C", str(repo), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                            capture_output=True, text=True, check=False).stdout.strip()
    lock = Path(common) / "gc.pid" if common else None
    deadline = time.monotonic() + GC_WAIT_S
    while lock is not None and lock.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.2)


def _cross_device(repo: Path, dest: Path) -> bool:
    """Hardlinks need one file system; git falls back by itself, this only keeps its warning away."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return os.stat(repo).st_dev != os.stat(dest.parent).st_dev


def _walk(repo: Path, skip: Path | None) -> list[str]:
    """Every file under ``repo`` (relative), without caches, virtualenvs, node_modules or run folders."""
    out: list[str] = []
    for folder, dirs, names in os.walk(repo):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and (here / d) != skip
                   and not (here / d).is_symlink() and not _is_run_folder(here / d)]
        dirs.sort()
        links = [d for d in os.listdir(here) if (here / d).is_symlink() and (here / d).is_dir()]
        out.extend(str((here / n).relative_to(repo)) for n in sorted([*names, *links]))
    return out


def _in_run_folder(repo: Path, rel: str, skip: Path | None, seen: dict[Path, bool]) -> bool:
    parent = (repo / rel).parent
    chain = []
    while parent != repo and parent not in seen:
        chain.append(parent)
        parent = parent.parent
    verdict = seen.get(parent, False)
    for p in reversed(chain):
        verdict = verdict or p == skip or _is_run_folder(p)
        seen[p] = verdict
    return verdict


def _copy_files(repo: Path, dest: Path, rels: list[str], skip: Path | None, max_bytes: int | None,
                note: Note | None, fresh: bool = True) -> None:
    seen: dict[Path, bool] = {}
    rels = [r for r in rels if not _in_run_folder(repo, r, skip, seen)]
    if max_bytes is not None:
        total = sum((repo / r).lstat().st_size for r in rels if (repo / r).is_file() or (repo / r).is_symlink())
        max_files = max_bytes // BYTES_PER_FILE
        if total > max_bytes or len(rels) > max_files:
            raise ConfigError(f"{repo} is not a git repository and holds {len(rels):,} files, "
                              f"{total / 1e9:.1f} GB: more than the copy limit ({max_files:,} files or "
                              f"{max_bytes / 1e9:.1f} GB); raise it with max_copy_bytes=BYTES (None: no limit), point "
                              "repo=PATH at the project itself, or make it a git repository")
    if fresh:
        dest.mkdir(parents=True, exist_ok=True)
        if note:
            note(f"workspace: copying {len(rels):,} files from {repo}")
    for i, rel in enumerate(rels, 1):
        _copy_one(repo / rel, dest / rel)
        if note and i % NOTE_EVERY == 0:
            note(f"workspace: {i:,}/{len(rels):,} files copied")


def _copy_one(src: Path, target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    if src.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(os.readlink(src))
    elif src.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def remove_workspace(out: Path, names: tuple[str, ...] = ("workspace", ".baseline.git")) -> int:
    """Delete a run folder's working copy and baseline (the patch and the trajectory stay); bytes freed."""
    freed = 0
    for name in names:
        path = Path(out) / name
        if path.is_symlink():
            path.unlink()
        elif path.is_dir():
            freed += sum(f.lstat().st_size for f in path.rglob("*") if not f.is_dir() or f.is_symlink())
            shutil.rmtree(path, ignore_errors=True)
    return freed


def _git(git_dir: Path, work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["git", f"--git-dir={git_dir}", f"--work-tree={work}", "-c", "core.autocrlf=false",
           "-c", "user.name=agentkit", "-c", "user.email=agentkit@localhost", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd=work)


_NO_COMMIT = re.compile(r"error: '(.+?)' does not have a commit checked out")


def _add_all(git_dir: Path, work: Path) -> list[str]:
    """Stage the whole tree. A folder git cannot add (a nested repository without a commit: the agent
    ran ``git init`` there) is left out and named, instead of failing the patch; any other failure
    is a ``SandboxError`` with git's message."""
    left_out: list[str] = []
    while True:
        done = _git(git_dir, work, "add", "-A", "--", ".", *(f":(exclude){p}" for p in left_out), check=False)
        if done.returncode == 0:
            return left_out
        new = [p for p in _NO_COMMIT.findall(done.stderr) if p not in left_out]
        if not new:
            tail = " ".join(done.stderr.strip().splitlines()[-2:])
            raise SandboxError(f"git could not take the workspace's changes for the patch: {tail}")
        left_out += new


class Baseline:
    """A snapshot of a directory taken before the run; ``diff()`` is the patch of everything since.
    ``left_out``: folders the last snapshot could not hold (nested repositories without a commit)."""

    def __init__(self, work: Path, git_dir: Path) -> None:
        self.work, self.git_dir = Path(work).resolve(), Path(git_dir).resolve()
        self.left_out: list[str] = []

    @classmethod
    def take(cls, work: Path, git_dir: Path, skip: Path | None = None, seed: Path | None = None) -> "Baseline":
        """``seed``: the git directory of a clone made at HEAD for this run (``copy_repo``); its objects
        (hardlinked) and index are reused, so only files that differ from HEAD are hashed again."""
        base = cls(work, git_dir)
        work, git_dir = base.work, base.git_dir
        if (git_dir / "HEAD").exists():  # resuming: keep the original baseline
            return base
        # Built beside its final place and renamed when complete, so a run killed half-way
        # never leaves a baseline without a commit.
        partial = git_dir.with_name(git_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        if seed is not None and (Path(seed) / "index").is_file():
            subprocess.run(["git", "clone", "-q", "--bare", "--local", str(seed), str(partial)], check=True,
                           capture_output=True)
            subprocess.run(["git", f"--git-dir={partial}", "config", "--remove-section", "remote.origin"],
                           capture_output=True, check=False)
            shutil.copy2(Path(seed) / "index", partial / "index")
        else:
            subprocess.run(["git", "init", "-q", "--bare", str(partial)], check=True, capture_output=True)
        (partial / "info").mkdir(exist_ok=True)
        excludes = list(_EXCLUDES)
        if skip is not None and Path(skip).resolve().is_relative_to(work):  # the run folder inside the tree
            excludes.append("/" + Path(skip).resolve().relative_to(work).as_posix() + "/")
        (partial / "info" / "exclude").write_text("\n".join(excludes) + "\n")
        base.left_out = _add_all(partial, work)
        _git(partial, work, "commit", "-q", "--allow-empty", "-m", "baseline")
        partial.rename(git_dir)
        return base

    def advance(self, message: str) -> None:
        """Take the directory as it is now as the baseline (a commit on top of the first), so
        ``diff()`` leaves out what changed so far (e.g. what ``--setup-cmd`` wrote)."""
        self.left_out = _add_all(self.git_dir, self.work)
        _git(self.git_dir, self.work, "commit", "-q", "--allow-empty", "-m", message)

    def diff(self) -> str:
        """The patch from the baseline to the tree as it is now (binary files included)."""
        self.left_out = _add_all(self.git_dir, self.work)
        return _git(self.git_dir, self.work, "diff", "--cached", "--binary", "HEAD").stdout


def sync_tree(src: Path, dest: Path, baseline: Baseline | None = None) -> None:
    """Make ``dest`` match ``src`` (a copy brought back from a container): copy every file over, and
    delete files the baseline knew that are gone from ``src``. Untracked files in ``dest`` that the
    baseline never saw (ignored build outputs, a virtualenv) are left alone."""
    src, dest = Path(src), Path(dest)
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        target = dest / rel
        if path.is_symlink():
            if target.is_symlink() or target.exists():
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                else:
                    target.unlink()
            target.symlink_to(path.readlink())
        elif path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    if baseline is not None:
        known = _git(baseline.git_dir, baseline.work, "ls-files", "-z").stdout.split("\0")
        for rel in filter(None, known):
            if not (src / rel).exists() and not (src / rel).is_symlink() and (dest / rel).exists():
                (dest / rel).unlink()
