"""The run folders under the default runs folder, and ``agentkit runs prune``."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from agentkit.app.workspace import remove_workspace

_OWN = ("workspace", ".baseline.git")


@dataclass(frozen=True)
class Pruned:
    path: Path
    what: str  # "workspace" (of a finished run) or "run" (a whole old run folder)
    bytes: int


def _size(path: Path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if not f.is_dir() or f.is_symlink())


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "result.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _age_days(run: Path) -> float:
    newest = max((p.stat().st_mtime for p in (run / "trajectory.jsonl", run / "result.json", run) if p.exists()))
    return (time.time() - newest) / 86400


def is_run(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and any((path / n).exists() for n in
                                                          ("trajectory.jsonl", "result.json", *_OWN))


def prune_runs(root: Path, older_than_days: float | None = None, dry_run: bool = False) -> list[Pruned]:
    """Delete whole runs older than ``older_than_days`` and the workspaces of runs that ended done.
    Only folders that look like run folders (a trajectory, a result or a workspace) are touched, one
    level down (single runs) and two (the tasks of a batch)."""
    if not root.is_dir():
        return []
    runs = []
    for child in sorted(root.iterdir()):
        if is_run(child):
            runs.append(child)
        elif child.is_dir() and not child.is_symlink():  # a batch: its tasks' folders
            runs.extend(c for c in sorted(child.iterdir()) if is_run(c))
    done: list[Pruned] = []
    for run in runs:
        if older_than_days is not None and _age_days(run) > older_than_days:
            done.append(Pruned(run, "run", _size(run)))
            if not dry_run:
                shutil.rmtree(run, ignore_errors=True)
        elif _status(run) == "done" and any((run / n).exists() for n in _OWN):
            size = sum(_size(run / n) for n in _OWN if (run / n).is_dir() and not (run / n).is_symlink())
            done.append(Pruned(run / "workspace", "workspace", size))
            if not dry_run:
                remove_workspace(run, _OWN)
    return done
