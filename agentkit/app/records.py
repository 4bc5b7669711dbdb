"""The record files a user hands to a batch or an evaluation (tasks, QA items, SWE-bench instances):
one record per line (blank lines and ``#`` comments skipped), each a pydantic model with a unique
id. A bad or repeated record is a one-line ``ConfigError`` that names its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, TypeVar

from pydantic import BaseModel, ValidationError

from agentkit.errors import ConfigError, first_error

M = TypeVar("M", bound=BaseModel)


def jsonl_lines(path: str | Path, text: str | None = None) -> list[tuple[str, str]]:
    """``("PATH:LINE", line)`` for each line of the file (or of ``text``) that holds a record."""
    if text is None:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    return [(f"{path}:{n}", line) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def validated(rows: Iterable[tuple[str, Any]], model: type[M], key: str, *, field: str,
              duplicate: str) -> list[tuple[str, M]]:
    """Each ``(where, row)`` (JSON text, or a parsed value) as a ``model``, with its ``where``.

    ``field``: what a failure names when pydantic gives no field; ``duplicate``: what a repeated
    ``key`` is called in its error."""
    out: list[tuple[str, M]] = []
    seen: set[Any] = set()
    for where, row in rows:
        try:
            item = model.model_validate_json(row) if isinstance(row, str) else model.model_validate(row)
        except ValidationError as e:
            at, msg = first_error(e, field)
            raise ConfigError(f"{where}: {at}: {msg}") from None
        ident = getattr(item, key)
        if ident in seen:
            raise ConfigError(f"{where}: duplicate {duplicate} {ident!r}")
        seen.add(ident)
        out.append((where, item))
    return out
