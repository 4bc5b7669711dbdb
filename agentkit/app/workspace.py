"""The code agent's working copy and the patch of what it changed.

The agent works on a copy of the user's repo (never the user's tree unless ``--in-place``). The
baseline is recorded in a separate git directory outside the workspace, so the agent's own git
commands cannot disturb it and repos that are not git repos get a patch too.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from agentkit.errors import ConfigError

# Never part of the patch: caches the tests leave behind and the sandbox's saved outputs.
_EXCLUDES = ["__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/", ".agentkit/", ".venv/", "node_modules/"]
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".mypy_cache", ".venv", "node_modules")


def check_repo(repo: str | Path) -> Path:
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--repo {repo}: not a directory; pass the path of the repository to work on")
    return path.resolve()


def copy_repo(repo: Path, dest: Path, skip: Path | None = None) -> Path:
    """Copy ``repo`` (with its .git, so the agent can use git) to ``dest``, leaving out caches and
    ``skip`` (the run's own output folder when it lies inside the repo, e.g. ``--repo .``)."""
    if dest.exists():
        shutil.rmtree(dest)
    skip_path = Path(skip).resolve() if skip is not None else None

    def ignore(folder: str, names: list[str]) -> set[str]:
        out = set(_COPY_IGNORE(folder, names))
        if skip_path is not None:
            out |= {n for n in names if (Path(folder) / n).resolve() == skip_path}
        return out

    shutil.copytree(repo, dest, symlinks=True, ignore=ignore)
    return dest


def _git(git_dir: Path, work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["git", f"--git-dir={git_dir}", f"--work-tree={work}", "-c", "core.autocrlf=false",
           "-c", "user.name=agentkit", "-c", "user.email=agentkit@localhost", "-c", "commit.gpgsign=false", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd=work)


class Baseline:
    """A snapshot of a directory taken before the run; ``diff()`` is the patch of everything since."""

    def __init__(self, work: Path, git_dir: Path) -> None:
        self.work, self.git_dir = Path(work).resolve(), Path(git_dir).resolve()

    @classmethod
    def take(cls, work: Path, git_dir: Path, skip: Path | None = None) -> "Baseline":
        base = cls(work, git_dir)
        work, git_dir = base.work, base.git_dir
        if (git_dir / "HEAD").exists():  # resuming: keep the original baseline
            return base
        # Built beside its final place and renamed when complete, so a run killed half-way
        # never leaves a baseline without a commit.
        partial = git_dir.with_name(git_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", str(partial)], check=True, capture_output=True)
        (partial / "info").mkdir(exist_ok=True)
        excludes = list(_EXCLUDES)
        if skip is not None and Path(skip).resolve().is_relative_to(work):  # the run folder inside the tree
            excludes.append("/" + Path(skip).resolve().relative_to(work).as_posix() + "/")
        (partial / "info" / "exclude").write_text("\n".join(excludes) + "\n")
        _git(partial, work, "add", "-A", ".")
        _git(partial, work, "commit", "-q", "--allow-empty", "-m", "baseline")
        partial.rename(git_dir)
        return base

    def diff(self) -> str:
        _git(self.git_dir, self.work, "add", "-A", ".")
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
