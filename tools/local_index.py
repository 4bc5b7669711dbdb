"""A folder of documents as a full-text index: SQLite FTS5 with BM25 ranking, one row per passage.

The research agent's ``local:DIR`` search backend and ``agentkit index DIR`` use it. Documents
(``.md``, ``.txt``, ``.html``, ``.pdf``, ...: ``fetch.LOCAL_KINDS``) are read with the same
extraction as ``fetch`` and cut into passages of about ``passage_chars`` characters at paragraph
breaks (``fetch.split_pages``), so a search returns the passages that match, not whole files.

The index lives in the per-user cache (``$XDG_CACHE_HOME`` or ``~/.cache``, then
``agentkit/index/<hash of the folder's real path>.sqlite``). ``refresh`` is incremental: a file
is read again only when its size or modification time changed, and files that are gone are
dropped. Hidden files and folders and symlinks are skipped (a link could lead out of the folder).
A passage's rowid is ``file_id << 20 | n``, so a file's passages are one rowid range.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from agentkit.errors import ConfigError, ToolError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's own locking still keeps the index whole
    fcntl = None  # type: ignore[assignment]

__all__ = ["LocalIndex", "Passage", "RefreshReport", "cache_dir", "default_index_path", "fts_query"]

SCHEMA_VERSION = "1"
PASSAGE_CHARS = 1200
SNIPPET_TOKENS = 64  # FTS5's snippet() allows at most 64
BATCH_FILES = 500  # files per write transaction while refreshing
_ROW_BITS = 20  # passages per file: at most 2**20
_STOPWORDS = frozenset(
    "a an and are as at be but by can did do does for from had has have how i if in into is it its of on or "
    "so than that the their then there these this those to was were what when where which who whom why will "
    "with would you your".split())
_WORD = re.compile(r"\w+")

Progress = Callable[[int, int, str], None]  # (files done, files to read, path)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/agentkit/index`` (``~/.cache/agentkit/index`` when it is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "agentkit" / "index"


def default_index_path(folder: str | Path) -> Path:
    """Where the index of ``folder`` lives: keyed by the folder's real path."""
    real = str(Path(folder).expanduser().resolve())
    return cache_dir() / (hashlib.sha256(real.encode()).hexdigest()[:20] + ".sqlite")


def fts_query(text: str) -> str:
    """A free-text query as an FTS5 expression: its words (stopwords dropped unless that leaves
    none), each quoted so punctuation and FTS5 operators in the text are plain words, joined by OR
    (BM25 ranks passages that match more and rarer words first)."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    kept = [w for w in words if w not in _STOPWORDS] or words
    return " OR ".join(f'"{w}"' for w in kept[:32])


@dataclass
class Passage:
    """One search result: a passage of a document, with a ``file:`` URL naming both."""

    path: str  # absolute
    url: str  # file:///abs/path#pN
    title: str
    n: int  # passage number in the document, from 1
    of: int  # passages in the document
    snippet: str
    score: float  # bm25: lower is better


@dataclass
class RefreshReport:
    root: str
    index: str
    files: int = 0  # documents in the index after the refresh
    passages: int = 0
    read: list[str] = field(default_factory=list)  # read (again): new or changed, relative paths
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # relative path -> why it could not be read
    seconds: float = 0.0
    size_bytes: int = 0  # the index file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scan(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of every document under ``root`` (no hidden parts, no links)."""
    from agentkit.tools.fetch import LOCAL_KINDS

    found: dict[str, tuple[int, int]] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable folder: skipped, like a missing one
        for e in entries:
            if e.name.startswith(".") or e.is_symlink():
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file(follow_symlinks=False) and os.path.splitext(e.name)[1].lower() in LOCAL_KINDS:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                found[os.path.relpath(e.path, root)] = (st.st_size, st.st_mtime_ns)
    return found


def _read(path: Path, passage_chars: int) -> tuple[str, list[str]]:
    """A document's title and passages."""
    from agentkit.tools.fetch import extract_file, split_pages

    text, meta, _kind = extract_file(path)
    passages = [p.strip() for p in split_pages(text, passage_chars)]
    return (meta.get("title") or path.name).strip(), [p for p in passages if p]


class LocalIndex:
    """The FTS5 index of one folder. Thread-safe; several processes may refresh it at once
    (SQLite's locking serialises their writes, and a file written twice is simply replaced)."""

    def __init__(self, root: str | Path, *, path: str | Path | None = None,
                 passage_chars: int = PASSAGE_CHARS) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ConfigError(f"local search folder {root} is not a directory.")
        self.path = Path(path) if path else default_index_path(self.root)
        self.passage_chars = passage_chars
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None

    # -- the database ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError:  # not a database (a damaged cache file): start again
                self.path.unlink(missing_ok=True)
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=600, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            chars = db.execute("SELECT value FROM meta WHERE key = 'passage_chars'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION or chars is None or int(chars[0]) != self.passage_chars:
                db.execute("DROP TABLE IF EXISTS files")
                db.execute("DROP TABLE IF EXISTS passages")
                db.execute("CREATE TABLE files(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER, "
                           "mtime_ns INTEGER, title TEXT, n_passages INTEGER NOT NULL DEFAULT 0, error TEXT)")
                db.execute("CREATE VIRTUAL TABLE passages USING fts5(title, body, "
                           "tokenize = 'porter unicode61 remove_diacritics 2')")
                db.execute("INSERT INTO passages(passages, rank) VALUES ('rank', 'bm25(2.0, 1.0)')")
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [("schema", SCHEMA_VERSION), ("root", str(self.root)),
                                ("passage_chars", str(self.passage_chars))])
            db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> LocalIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building ------------------------------------------------------------------------------
    def refresh(self, progress: Progress | None = None, *, rebuild: bool = False) -> RefreshReport:
        """Bring the index up to date with the folder: read new and changed files, drop deleted ones.

        One refresh of an index runs at a time, across threads and processes (a lock file beside
        it): runs that start together on a new folder read it once, the others then find it current.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a+b") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            return self._refresh(progress, rebuild)

    def _refresh(self, progress: Progress | None, rebuild: bool) -> RefreshReport:
        t0 = time.perf_counter()
        report = RefreshReport(root=str(self.root), index=str(self.path))
        on_disk = _scan(self.root)
        with self._lock:
            db = self._connect()
            if rebuild:
                self._write(db, lambda: (db.execute("DELETE FROM files"), db.execute("DELETE FROM passages")))
            known = {p: (i, s, m) for i, p, s, m in db.execute("SELECT id, path, size, mtime_ns FROM files")}
        report.removed = sorted(p for p in known if p not in on_disk)
        todo = sorted(p for p, st in on_disk.items() if p not in known or known[p][1:] != st)
        if report.removed:
            def drop() -> None:
                for rel in report.removed:
                    fid = known[rel][0]
                    db.execute("DELETE FROM passages WHERE rowid >= ? AND rowid < ?",
                               (fid << _ROW_BITS, (fid + 1) << _ROW_BITS))
                    db.execute("DELETE FROM files WHERE id = ?", (fid,))
            with self._lock:
                self._write(db, drop)
        if progress:
            progress(0, len(todo), "")
        for start in range(0, len(todo), BATCH_FILES):
            batch = []
            for rel in todo[start:start + BATCH_FILES]:
                size, mtime = on_disk[rel]
                try:
                    title, passages = _read(self.root / rel, self.passage_chars)
                    error = None
                except (OSError, ToolError, ValueError) as e:  # an unreadable or damaged file: recorded, skipped
                    title, passages, error = rel, [], str(e) or type(e).__name__
                    report.failed[rel] = error
                batch.append((rel, size, mtime, title, passages[: (1 << _ROW_BITS) - 1], error))
                report.read.append(rel)
                if progress:
                    progress(len(report.read), len(todo), rel)
            with self._lock:
                self._write(db, lambda b=batch: self._store(db, b))
        with self._lock:
            if len(todo) > max(1000, len(on_disk) // 4):  # a big change: merge FTS5's segments for fast queries
                self._write(db, lambda: db.execute("INSERT INTO passages(passages) VALUES ('optimize')"))
            report.files, report.passages = db.execute("SELECT count(*), coalesce(sum(n_passages), 0) FROM files "
                                                        "WHERE error IS NULL").fetchone()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        report.size_bytes = self.size_bytes()
        report.seconds = time.perf_counter() - t0
        return report

    @staticmethod
    def _write(db: sqlite3.Connection, work: Callable[[], Any]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            work()
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _store(db: sqlite3.Connection, batch: list[tuple[str, int, int, str, list[str], str | None]]) -> None:
        for rel, size, mtime, title, passages, error in batch:
            row = db.execute("SELECT id FROM files WHERE path = ?", (rel,)).fetchone()
            if row is None:
                fid = db.execute("INSERT INTO files(path, size, mtime_ns, title, n_passages, error) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (rel, size, mtime, title, len(passages), error)).lastrowid
            else:
                fid = row[0]
                db.execute("DELETE FROM passages WHERE rowid >= ? AND rowid < ?",
                           (fid << _ROW_BITS, (fid + 1) << _ROW_BITS))
                db.execute("UPDATE files SET size = ?, mtime_ns = ?, title = ?, n_passages = ?, error = ? WHERE id = ?",
                           (size, mtime, title, len(passages), error, fid))
            db.executemany("INSERT INTO passages(rowid, title, body) VALUES (?, ?, ?)",
                           [((fid << _ROW_BITS) | n, title, text) for n, text in enumerate(passages, 1)])

    # -- reading -------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 5) -> list[Passage]:
        """The ``limit`` best passages for ``query`` by BM25 (title words count double)."""
        expr = fts_query(query)
        if not expr or limit < 1:
            return []
        with self._lock:
            db = self._connect()
            rows = db.execute(
                f"SELECT passages.rowid, rank, snippet(passages, 1, '', '', '…', {SNIPPET_TOKENS}), f.path, f.title, "
                f"f.n_passages FROM passages JOIN files AS f ON f.id = (passages.rowid >> {_ROW_BITS}) "
                "WHERE passages MATCH ? ORDER BY rank LIMIT ?", (expr, limit)).fetchall()
        out = []
        for rowid, score, snippet, rel, title, total in rows:
            n = rowid & ((1 << _ROW_BITS) - 1)
            path = self.root / rel
            out.append(Passage(path=str(path), url=f"{path.as_uri()}#p{n}", title=title, n=n, of=total,
                               snippet=" ".join(snippet.split()), score=score))
        return out

    def stats(self) -> dict[str, int]:
        with self._lock:
            files, passages = self._connect().execute(
                "SELECT count(*), coalesce(sum(n_passages), 0) FROM files WHERE error IS NULL").fetchone()
        return {"files": files, "passages": passages, "size_bytes": self.size_bytes()}

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
