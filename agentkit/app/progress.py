"""What a user sees while a run goes: step, last tool and its argument, tokens, cost, elapsed.

Three modes: ``live`` (a rich status line redrawn in place, for terminals), ``plain`` (one line per
event, for logs and pipes) and ``quiet`` (nothing). ``auto`` picks live on a TTY, plain otherwise.
The display reads the agent's events by duck typing (kind/step/name/arguments/usage) so it keeps
working when events gain fields.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

Mode = Literal["auto", "live", "plain", "quiet"]


def _kind(event: Any) -> str:
    kind = getattr(event, "kind", None) or getattr(event, "type", None)
    if not isinstance(kind, str) or not kind:
        kind = type(event).__name__
    return kind.lower().replace("event", "").replace("_", "").replace("-", "")


def short_argument(name: str | None, arguments: Any, width: int = 80) -> str:
    """The one argument worth showing for a tool call (the command, the path, the query ...)."""
    args = arguments
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return _clip(args, width)
    if isinstance(args, dict):
        for key in ("command", "questions", "url", "code", "path", "summary", "query"):
            value = args.get(key)
            if isinstance(value, str) and value:
                if key == "command" and name == "str_replace_editor" and args.get("path"):
                    return _clip(f"{value} {args['path']}", width)
                return _clip(value, width)
        return _clip(json.dumps(args, ensure_ascii=False), width)
    return _clip(str(args or ""), width)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Progress:
    """Feed it agent events with ``update(event)``; ``close()`` prints the last line."""

    def __init__(self, mode: Mode = "auto", stream: TextIO | None = None, label: str = "") -> None:
        self.stream = stream or sys.stdout
        if mode == "auto":
            mode = "live" if getattr(self.stream, "isatty", lambda: False)() else "plain"
        self.mode = mode
        self.label = label
        self.step = 0
        self.tool: str | None = None
        self.argument = ""
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost: float | None = 0.0
        self.status = "running"
        self.started = time.monotonic()
        self._live: Live | None = None
        self._console = Console(file=self.stream, highlight=False, soft_wrap=True)

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "Progress":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.started = time.monotonic()
        if self.mode == "live" and self._live is None:
            # get_renderable: each refresh re-renders, so elapsed keeps ticking while a tool runs
            self._live = Live(console=self._console, refresh_per_second=4, transient=False,
                              get_renderable=self._render)
            self._live.start()

    def close(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    # -- state -----------------------------------------------------------------------------------
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def add_usage(self, usage: Any) -> None:
        if usage is None:
            return
        self.prompt_tokens += int(getattr(usage, "prompt", 0) or 0)
        self.completion_tokens += int(getattr(usage, "completion", 0) or 0)
        cost = getattr(usage, "cost_usd", 0.0)
        self.cost = None if cost is None or self.cost is None else self.cost + cost

    def update(self, event: Any) -> None:
        """Take one agent event (any object with a kind/type or a telling class name)."""
        kind = _kind(event)
        step = getattr(event, "step", None)
        if isinstance(step, int) and step > self.step:
            self.step = step
        line: str | None = None
        if "toolcall" in kind and ("start" in kind or kind == "toolcall"):
            call = getattr(event, "call", None) or getattr(event, "tool_call", None)
            name = getattr(event, "name", None) or getattr(call, "name", None) or getattr(event, "tool", None)
            args = getattr(event, "arguments", None)
            if args is None:
                args = getattr(call, "arguments", None)
            self.tool, self.argument = name, short_argument(name, args)
            line = f"{self.tool}: {self.argument}"
        elif ("model" in kind and ("finish" in kind or "end" in kind or "done" in kind)) or kind == "completion":
            usage = getattr(event, "usage", None)
            if usage is None:
                usage = getattr(getattr(event, "completion", None), "usage", None)
            self.add_usage(usage)
        elif kind == "limit":
            line = (f"limit: {getattr(event, 'limit', '?')} reached "
                    f"({getattr(event, 'value', '?')} of {getattr(event, 'maximum', '?')})")
        elif kind in ("retry", "fallback", "compaction", "warning", "error"):
            detail = (getattr(event, "error", None) or getattr(event, "text", None)
                      or getattr(event, "strategy", None) or getattr(event, "to_model", None) or "")
            line = f"{kind}: {_clip(str(detail), 100)}"
            if getattr(event, "discarded", False) is True:  # the streamed reply so far is void
                line += " (reply so far dropped; starting over)"
        elif kind in ("end", "runend", "runended", "finished", "done"):
            self.status = str(getattr(event, "status", None) or "done")
            usage = getattr(event, "usage", None)
            if usage is not None and (usage.prompt or usage.completion):
                self.prompt_tokens, self.completion_tokens = usage.prompt, usage.completion
                self.cost = getattr(event, "cost_usd", self.cost)
            line = f"end: {self.status}"
        self._emit(line)

    def note(self, text: str) -> None:
        """A free-form line (e.g. "running tests"), shown in every mode but quiet."""
        if self.mode == "quiet":
            return
        if self._live is not None:
            self._live.console.print(Text(text, style="dim"))
        else:
            print(text, file=self.stream, flush=True)

    # -- output ----------------------------------------------------------------------------------
    def summary(self) -> str:
        cost = "?" if self.cost is None else f"${self.cost:.4f}"
        tool = f" | {self.tool}: {self.argument}" if self.tool else ""
        label = f"{self.label} " if self.label else ""
        return (f"{label}step {self.step} | {self.tokens:,} tok | {cost} | {self.elapsed:.1f}s{tool}")

    def _render(self) -> Text:
        text = Text()
        if self.label:
            text.append(self.label + " ", style="bold")
        text.append(f"step {self.step}", style="bold cyan")
        text.append(f"  {self.tokens:,} tok", style="green")
        text.append("  " + ("$?" if self.cost is None else f"${self.cost:.4f}"), style="yellow")
        text.append(f"  {self.elapsed:.1f}s", style="dim")
        if self.tool:
            text.append(f"  {self.tool}", style="magenta")
            text.append(f" {self.argument}")
        return text

    def _emit(self, line: str | None) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "live":
            if self._live is not None:
                self._live.refresh()
            return
        if line:
            cost = "?" if self.cost is None else f"{self.cost:.4f}"
            print(f"[step {self.step} | {self.tokens} tok | ${cost} | {self.elapsed:.1f}s] {line}",
                  file=self.stream, flush=True)
