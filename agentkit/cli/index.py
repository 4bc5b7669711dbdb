"""``agentkit index DIR``: build or refresh the search index of a folder of documents ahead of time.

``agentkit research --search-backend local:DIR`` builds or refreshes the same index itself before
its first search; running this first moves that wait out of the run (and shows its progress).
"""

from __future__ import annotations

import argparse
from typing import Any

from agentkit.cli.common import print_json
from agentkit.errors import AgentkitError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a folder of .md/.txt/.html/.pdf for --search-backend local:DIR",
                       description="Build or refresh the full-text index (SQLite FTS5, by passage) of a folder; "
                                   "only new and changed files are read. The index lives in the user cache "
                                   "($XDG_CACHE_HOME or ~/.cache, then agentkit/index/).")
    p.add_argument("folder", metavar="DIR", help="the folder of documents")
    p.add_argument("--rebuild", action="store_true", help="read every file again, not only changed ones")
    p.add_argument("--search", metavar="QUERY", help="then print the best passages for QUERY (a quick check)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    import sqlite3

    from rich.console import Console

    from agentkit.tools.local_index import LocalIndex

    console = Console(stderr=True)
    index = LocalIndex(args.folder)
    try:
        if args.quiet or args.json:
            report = index.refresh(rebuild=args.rebuild)
        else:
            report = _with_bar(index, args.rebuild, console)
        hits = index.search(args.search, 5) if args.search else None
    except (sqlite3.Error, OSError) as e:
        raise AgentkitError(f"could not index {index.root} in {index.path}: {e}") from None
    finally:
        index.close()
    data: dict[str, Any] = report.to_dict()
    data["read"], data["removed"] = len(report.read), len(report.removed)
    if hits is not None:
        data["hits"] = [{"url": h.url, "title": h.title, "snippet": h.snippet} for h in hits]
    if args.json:
        print_json(data)
        return 0
    print(f"{report.root}: {report.files:,} documents, {report.passages:,} passages "
          f"({len(report.read):,} read, {len(report.removed):,} removed, {len(report.failed):,} unreadable) "
          f"in {report.seconds:.1f} s")
    size = report.size_bytes
    print(f"index: {report.index} ({size / 1e6:.1f} MB)" if size >= 1e6 else f"index: {report.index} ({size / 1e3:.0f} kB)")
    for rel, why in sorted(report.failed.items())[:20]:
        print(f"unreadable: {rel}: {why}")
    for h in hits or []:
        print(f"- {h.title}  {h.url}\n  {h.snippet[:200]}")
    return 0


def _with_bar(index: Any, rebuild: bool, console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[path]}", style="dim"), console=console, transient=True) as bar:
        task = bar.add_task("index", total=None, path="")

        def progress(done: int, total: int, path: str) -> None:
            bar.update(task, completed=done, total=total, path=path[-60:])

        return index.refresh(progress, rebuild=rebuild)
