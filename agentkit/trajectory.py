"""The run log: append-only JSONL (schema v1), written line by line as things happen.

Every record is flushed when written, so a killed process leaves a file that is valid up to
its last complete line; ``read_records`` ignores a cut last line. Secrets never reach the file:
values of secret-looking keys are replaced, and literal secrets given to the writer are masked
wherever they appear.

Records: ``run`` (first), ``message``, ``tool_result``, ``event`` (retry, fallback, compaction,
limit, error, warning, resume, sources), ``end``. A ``tool_result`` carries both the tool's full
``observation`` and the ``message`` the model was actually given (possibly cut).

A ``compaction`` event rewrites the model's context: ``start``/``end`` index the context list as
it was just before the event, and ``messages`` replace that slice. Applying the message records
and compaction events in file order rebuilds exactly what the model saw at each call.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable

from pydantic import TypeAdapter

from agentkit.errors import ConfigError
from agentkit.messages import AssistantMessage, Message, ToolMessage, Usage, message_from_openai
from agentkit.redact import REDACTED, mask_passwords

SCHEMA_VERSION = 1

# Keys whose values are secrets wherever they appear (settings, headers, extra_body ...).
_SECRET_KEY = re.compile(
    r"(api[_-]?key|apikey|authorization|secret|password|passwd|cookie|bearer|credential"
    r"|^token$|[_-]token$|^x-api-key$|access[_-]?token|refresh[_-]?token|private[_-]?key)",
    re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_-]{15,}")  # OpenAI-style keys (OpenRouter, DeepSeek)

_MESSAGE = TypeAdapter(Message)


def is_secret_key(key: str) -> bool:
    """Whether a settings key names a secret (its value is redacted in trajectories)."""
    return bool(_SECRET_KEY.search(key))


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys' values replaced, and bearer tokens, ``sk-`` keys
    and URL passwords masked wherever they appear (a key echoed in an error, a ``--base-url``)."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                    else scrub(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        if "earer" in value:
            value = _BEARER.sub(r"\1" + REDACTED, value)
        if "sk-" in value:
            value = _SK_KEY.sub(REDACTED, value)
        if "://" in value:  # a --base-url with user:password@
            value = mask_passwords(value)
    return value


class TrajectoryWriter:
    """Writes records to a JSONL file, one flushed line each (fsynced too with ``fsync=True``).

    ``append=True`` (the default, used by resume) continues an existing file; ``append=False``
    starts a new one. A file has one writer at a time: the writer holds an exclusive ``flock``
    on it until ``close()``, and a second writer (in this process or another) is refused with a
    ``ConfigError`` before it changes the file.
    """

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False,
                 secrets: Iterable[str] = (), append: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._secrets = [s for s in secrets if s and len(s) >= 4]
        self._fh = open(self.path, "a", encoding="utf-8")  # "a": nothing changes before the lock is held
        try:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - no flock on this platform: one writer is the caller's job
            pass
        except OSError:
            self._fh.close()
            raise ConfigError(f"trajectory {self.path} is being written by another run; give each run its "
                              "own file (trajectory=... per run)") from None
        if append:
            self._repair_cut_tail()
        else:
            self._fh.truncate(0)

    def _repair_cut_tail(self) -> None:
        """A killed writer may have left half a line: cut it so appends start on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data.endswith(b"\n"):
                return
            start = data.rfind(b"\n") + 1
            try:  # complete but unterminated: keep it
                json.loads(data[start:].decode("utf-8"))
                fh.write(b"\n")
            except (UnicodeDecodeError, json.JSONDecodeError):
                fh.truncate(start)

    def add_secret(self, secret: str | None) -> None:
        """Redact this value from every line written from now on."""
        if secret and len(secret) >= 4:
            self._secrets.append(secret)

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record (scrubbed, secrets redacted) as a flushed JSONL line; returns it."""
        record = scrub({"v": SCHEMA_VERSION, **record, "t": round(time.time(), 3)})
        line = json.dumps(record, ensure_ascii=False, default=_json_default)
        for s in self._secrets:
            line = line.replace(s, REDACTED)
            line = line.replace(json.dumps(s, ensure_ascii=False)[1:-1], REDACTED)
        self._fh.write(line + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        return record

    # Convenience writers, so the loop and other users produce the same shapes.
    def run(self, **fields: Any) -> dict[str, Any]:
        """Write the run header (the first line)."""
        return self.write({"type": "run", **fields})

    def message(self, step: int, message: Message, usage: Usage | None = None,
                latency_s: float | None = None, cost_usd: float | None = None,
                **fields: Any) -> dict[str, Any]:
        """Write a message record of step ``step`` (with the call's usage, latency and cost for a model turn).
        """
        return self.write({"type": "message", "step": step, "message": message.to_openai(),
                           "usage": usage.model_dump() if usage else None,
                           "latency_s": latency_s, "cost_usd": cost_usd, **fields})

    def tool_result(self, step: int, message: Message, observation: dict[str, Any],
                    duration_s: float, **fields: Any) -> dict[str, Any]:
        """Write a tool result: the message the model got and the full observation."""
        return self.write({"type": "tool_result", "step": step,
                           "tool_call_id": getattr(message, "tool_call_id", ""),
                           "name": message.name, "observation": observation,
                           "message": message.to_openai(), "duration_s": round(duration_s, 4),
                           **fields})

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Write an event record (retry, fallback, compaction, limit, error, ...)."""
        return self.write({"type": "event", "kind": kind, **fields})

    def end(self, status: str, answer: str | None, usage_total: Usage, cost_total_usd: float | None,
            **fields: Any) -> dict[str, Any]:
        """Write the end record: status, answer and totals (the last line)."""
        return self.write({"type": "end", "status": status, "answer": answer,
                           "usage_total": usage_total.model_dump(), "cost_total_usd": cost_total_usd,
                           **fields})

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self._fh.closed

    def close(self) -> None:
        """Close the file and release its lock."""
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


class TrajectoryError(ConfigError):
    """A trajectory (or JSONL script) that cannot be read: one line that names the file and the line."""


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All complete records of a JSONL file; a cut (killed) last line is ignored. Anything else
    that is not one JSON object per line is a ``TrajectoryError``."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
    except FileNotFoundError:  # callers word this one themselves
        raise
    except IsADirectoryError:
        raise TrajectoryError(f"{path} is a directory; pass the trajectory .jsonl file inside it") from None
    except OSError as e:
        raise TrajectoryError(f"cannot read {path}: {e.strerror or e}") from None
    if any(b"\0" in line for line in lines):
        raise TrajectoryError(f"{path} is a binary file, not a JSONL trajectory")
    records: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if i == len(lines) - 1:  # the unterminated last line: a write cut short
                break
            raise TrajectoryError(f"{path}: line {i + 1} is not valid JSON; the file is damaged "
                                  "or not a JSONL file") from None
        if not isinstance(record, dict):
            raise TrajectoryError(f"{path}: line {i + 1} is not a JSON object; the file is damaged "
                                  "or not a JSONL file")
        records.append(record)
    return records


_FIELD_TYPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "run": {"id": str, "task": str, "tools": list, "options": dict, "settings": dict, "model": str},
    "message": {"message": dict, "usage": dict},
    "tool_result": {"message": dict, "observation": dict, "tool_call_id": str, "name": str},
    "event": {"kind": str, "usage": dict, "summary_message": dict, "messages": list, "sources": list},
    "end": {"status": str, "answer": str, "sources": list, "error": str},
}


def check_records(records: list[dict[str, Any]], path: str | os.PathLike[str], strict: bool = False) -> None:
    """Raise a one-line ``TrajectoryError`` for what a hand edit or corruption leaves: no run
    header, or a known record whose fields have the wrong types, so readers never hit a traceback.
    ``strict`` (resume) also checks usage, which the viewers can skip but budgets cannot."""
    if not records or records[0].get("type") != "run":
        what = "is empty" if not records else "has no run record on its first line"
        raise TrajectoryError(f"{path} {what}; it is not an agentkit trajectory")
    for n, r in enumerate(records, 1):
        kind = r.get("type")
        try:
            for key, typ in _FIELD_TYPES.get(kind if isinstance(kind, str) else "", {}).items():
                if r.get(key) is not None and not isinstance(r[key], typ):
                    raise TypeError(f"field {key!r} is {type(r[key]).__name__}")
                if typ is list and not all(isinstance(x, dict) for x in r.get(key) or []):
                    raise TypeError(f"field {key!r} holds something other than objects")
            if kind == "message" or (kind == "tool_result" and "message" in r):
                if "message" not in r:
                    raise TypeError("no 'message' field")
                message_of(r)
            elif kind == "tool_result":
                if not isinstance((r.get("observation") or {}).get("text", ""), str):
                    raise TypeError("observation text is not a string")
            if strict and isinstance(r.get("usage"), dict):
                Usage(**r["usage"])
            if kind == "event" and r.get("kind") == "compaction":
                apply_compaction([], r)
            if kind == "event" and isinstance(r.get("summary_message"), dict):
                message_from_openai(r["summary_message"])
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            detail = " ".join(str(e).split())[:160]
            raise TrajectoryError(f"{path}: record {n} ({kind}) is damaged: {detail}") from None


def message_of(record: dict[str, Any]) -> Message:
    """The message a record carries (a tool_result without one is rebuilt from its observation)."""
    if "message" not in record and record.get("type") == "tool_result":
        return ToolMessage(tool_call_id=record.get("tool_call_id") or "", name=record.get("name"),
                           content=(record.get("observation") or {}).get("text", ""))
    return message_from_openai(record["message"])


def apply_compaction(context: list[Message], event: dict[str, Any]) -> list[Message]:
    """The context after a compaction event (``start``/``end`` slice replaced by ``messages``)."""
    start, end = int(event["start"]), int(event["end"])
    replacement = [message_from_openai(m) for m in event.get("messages") or []]
    return context[:start] + replacement + context[end:]


class Trajectory:
    """A loaded trajectory: the run header, records, messages, events, usage and outcome."""

    def __init__(self, records: list[dict[str, Any]], path: str | None = None) -> None:
        self.path = path
        self.records = records
        self.run: dict[str, Any] = next((r for r in records if r.get("type") == "run"), {})

    @classmethod
    def load(cls, path: str | os.PathLike[str], check: bool = True, strict: bool = False) -> "Trajectory":
        """The trajectory at ``path``; unless ``check=False``, a damaged one is a ``TrajectoryError``
        (see ``check_records``)."""
        records = read_records(path)
        if check:
            check_records(records, path, strict=strict)
        return cls(records, str(path))

    # --- what happened -------------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        """The full history as logged (system, task, every turn and tool result), no compaction."""
        return [message_of(r) for r in self.records if r.get("type") in ("message", "tool_result")]

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tool schemas the run offered the model."""
        return list(self.run.get("tools") or [])

    @property
    def task(self) -> str | None:
        """The task the run was given."""
        return self.run.get("task")

    @property
    def events(self) -> list[dict[str, Any]]:
        """The event records (retries, fallbacks, compactions, limits, errors)."""
        return [r for r in self.records if r.get("type") == "event"]

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The tool result records, in order."""
        return [r for r in self.records if r.get("type") == "tool_result"]

    @property
    def end(self) -> dict[str, Any] | None:
        """The last ``end`` record, if nothing was logged after it (a resumed run may follow one)."""
        for r in reversed(self.records):
            if r.get("type") == "end":
                return r
            if r.get("type") in ("message", "tool_result"):
                return None
        return None

    @property
    def status(self) -> str:
        """done | limit | error | cancelled, or ``incomplete`` for a run that was killed."""
        end = self.end
        return end["status"] if end else "incomplete"

    @property
    def answer(self) -> str | None:
        """The final answer, if the run ended with one."""
        end = self.end
        return end.get("answer") if end else None

    @property
    def steps(self) -> int:
        """Model calls made (assistant messages logged)."""
        return sum(1 for r in self.records if r.get("type") == "message"
                   and (r.get("message") or {}).get("role") == "assistant")

    @property
    def model_turns(self) -> int:
        """Turns the model produced, summaries included (what a replay of this run has played)."""
        return sum(1 for r in self.records if (r.get("type") == "message"
                   and (r.get("message") or {}).get("role") == "assistant")
                   or (r.get("type") == "event" and r.get("summary_message")))

    @property
    def usage(self) -> Usage:
        """Token usage summed over every model call of the run (summaries included)."""
        total = Usage()
        for r in self.records:
            # model calls: assistant messages, and events that called the model (a summary)
            if r.get("type") in ("message", "event") and r.get("usage"):
                total = total + Usage(**r["usage"])
        return total

    @property
    def cost_usd(self) -> float | None:
        """The run's cost in USD, when the provider reported prices."""
        return self.usage.cost_usd

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Numbered sources (``{"n", "url", "title"}``) from the latest sources snapshot."""
        for r in reversed(self.records):
            if r.get("type") == "end" and r.get("sources") is not None:
                return list(r["sources"])
            if r.get("type") == "event" and r.get("kind") == "sources":
                return list(r.get("sources") or [])
        return []

    # --- what the model saw --------------------------------------------------------------
    def model_calls(self) -> list[list[Message]]:
        """The exact message list of every model call, in order (compactions applied)."""
        calls: list[list[Message]] = []
        context: list[Message] = []
        for r in self.records:
            kind = r.get("type")
            if kind in ("message", "tool_result"):
                msg = message_of(r)
                if kind == "message" and isinstance(msg, AssistantMessage):
                    calls.append(list(context))
                context.append(msg)
            elif kind == "event" and r.get("kind") == "compaction":
                context = apply_compaction(context, r)
        return calls

    def context_messages(self) -> list[Message]:
        """Exactly the message list the model saw at its last call (empty before any call)."""
        calls = self.model_calls()
        return calls[-1] if calls else []

    def next_context(self) -> list[Message]:
        """The context the next model call would start from (used by resume)."""
        context: list[Message] = []
        for r in self.records:
            if r.get("type") in ("message", "tool_result"):
                context.append(message_of(r))
            elif r.get("type") == "event" and r.get("kind") == "compaction":
                context = apply_compaction(context, r)
        return context


__all__ = ["SCHEMA_VERSION", "Trajectory", "TrajectoryError", "TrajectoryWriter", "apply_compaction",
           "check_records", "read_records", "scrub", "is_secret_key"]
