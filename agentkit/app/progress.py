"""What a user sees while a run goes.

Three modes: ``live`` (for terminals: what the agent does scrolls by — the model's text, its
reasoning folded to one line, each tool call with the head of its output, file edits as coloured
diffs, retries with their wait — above a status line redrawn in place with step, tokens, cost and
elapsed time), ``plain`` (one line per event, for logs and pipes) and ``quiet`` (nothing). ``auto``
picks live on a TTY, plain otherwise. The display reads the agent's events by duck typing
(kind/step/name/arguments/usage) so it keeps working when events gain fields.

Retries are shown when they happen, before the wait: :meth:`Progress.watch` wraps the model so its
retry reports reach the display at once (the agent's own ``Retry`` event arrives after the call).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from agentkit.presets.toolset import edit_diff, json_args as _json_args

Mode = Literal["auto", "live", "plain", "quiet"]
OUTPUT_HEAD_LINES = 6  # lines of a tool's output shown in the live view
DIFF_LINES = 40  # most lines of one edit's diff shown


def _kind(event: Any) -> str:
    kind = getattr(event, "kind", None) or getattr(event, "type", None)
    if not isinstance(kind, str) or not kind:
        kind = type(event).__name__
    return kind.lower().replace("event", "").replace("_", "").replace("-", "")


def short_argument(name: str | None, arguments: Any, width: int = 80) -> str:
    """The one argument worth showing for a tool call (the command, the path, the query ...)."""
    args = _json_args(arguments)
    if isinstance(args, str):
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


def retry_line(event: Any, provider: str | None = None) -> str:
    """"429 from openrouter, retrying in 4.2 s (attempt 2): ..." for a retry report."""
    status = getattr(event, "status", None)
    source = provider or getattr(event, "model", None) or "the model"
    what = f"{status} from {source}" if status else f"error from {source}"
    wait = float(getattr(event, "wait_s", 0.0) or 0.0)
    attempt = getattr(event, "attempt", None)
    line = f"{what}, retrying in {wait:.1f} s" + (f" (attempt {attempt})" if attempt else "")
    error = str(getattr(event, "error", "") or "")
    return line + (f": {_clip(error, 100)}" if error else "")


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _head(text: str, n: int = OUTPUT_HEAD_LINES, width: int = 160) -> list[str]:
    lines = text.rstrip("\n").splitlines() or ["(no output)"]
    shown = [line if len(line) <= width else line[: width - 1] + "…" for line in lines[:n]]
    if len(lines) > n:
        shown.append(f"… {len(lines) - n} more lines")
    return shown


class _Watched:
    """A model whose retry reports also go straight to a display (see :meth:`Progress.watch`)."""

    def __init__(self, inner: Any, progress: "Progress") -> None:
        self._inner, self._progress = inner, progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _tee(self, on_event: Any) -> Any:
        def report(event: Any) -> None:
            self._progress.model_event(event)
            if on_event is not None:
                on_event(event)
        return report

    async def complete(self, *args: Any, on_event: Any = None, **kw: Any) -> Any:
        return await self._inner.complete(*args, on_event=self._tee(on_event), **kw)

    def stream(self, *args: Any, on_event: Any = None, **kw: Any) -> Any:
        return self._inner.stream(*args, on_event=self._tee(on_event), **kw)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Progress:
    """Feed it agent events with ``update(event)``; ``close()`` prints the last line."""

    def __init__(self, mode: Mode = "auto", stream: TextIO | None = None, label: str = "") -> None:
        self.stream = stream or sys.stdout
        if mode == "auto":
            mode = "live" if getattr(self.stream, "isatty", lambda: False)() else "plain"
        self.mode = mode
        self.label = label
        self.provider: str | None = None
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
        self._retries_shown: set[tuple[int, int]] = set()  # (step, attempt) shown by watch()

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
                              get_renderable=self._render, redirect_stdout=False, redirect_stderr=False)
            self._live.start()

    def close(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def pause(self) -> Any:
        """A context manager that stops the status line while something else uses the terminal
        (a ``--confirm`` question), and starts it again after."""
        progress = self

        class _Paused:
            def __enter__(self) -> None:
                self.was_live = progress._live is not None
                progress.close()

            def __exit__(self, *exc: object) -> None:
                if self.was_live:
                    started = progress.started
                    progress.start()
                    progress.started = started

        return _Paused()

    def watch(self, model: Any) -> Any:
        """``model``, wrapped so that a retry is shown when it happens, before the wait."""
        self.provider = self.provider or getattr(model, "provider", None)
        return _Watched(model, self)

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

    def model_event(self, event: Any) -> None:
        """A retry or fallback reported by the model while the call is still going."""
        if getattr(event, "kind", None) != "retry":
            return
        self._retries_shown.add((self.step + 1, int(getattr(event, "attempt", 0) or 0)))
        self._show_retry(event)

    def _show_retry(self, event: Any) -> None:
        line = retry_line(event, self.provider)
        if getattr(event, "discarded", False) is True:  # the streamed reply so far is void
            line += " (reply so far dropped; starting over)"
        if self.mode == "live":
            self._print(Text("↻ " + line, style="yellow"))
        else:
            self._emit(f"retry: {line}")

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
            if self.mode == "live":
                self._show_call(name, args)
        elif "toolcall" in kind and ("finish" in kind or "end" in kind):
            if self.mode == "live":
                style = "red" if getattr(event, "is_error", False) else "dim"
                self._print(Text("\n".join("  │ " + x for x in _head(str(getattr(event, "text", "") or ""))),
                                 style=style))
        elif ("model" in kind and ("finish" in kind or "end" in kind or "done" in kind)) or kind == "completion":
            usage = getattr(event, "usage", None)
            if usage is None:
                usage = getattr(getattr(event, "completion", None), "usage", None)
            self.add_usage(usage)
            if self.mode == "live":
                self._show_reply(getattr(event, "reasoning", None), getattr(event, "content", None))
        elif kind == "limit":
            line = (f"limit: {getattr(event, 'limit', '?')} reached "
                    f"({getattr(event, 'value', '?')} of {getattr(event, 'maximum', '?')})")
        elif kind == "retry":
            key = (self.step, int(getattr(event, "attempt", 0) or 0))
            if key not in self._retries_shown:  # not seen through watch(): show it now
                self._show_retry(event)
            return
        elif kind in ("fallback", "compaction", "warning", "error"):
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
            error = getattr(event, "error", None)
            if self.status != "done" and error:
                line += f" ({_clip(str(error), 200)})"
        if self.mode == "live" and line and kind not in ("toolcallstarted", "toolcall"):
            self._print(Text(line, style="bold" if kind.startswith("end") else "yellow"))
        self._emit(line)

    def note(self, text: str) -> None:
        """A free-form line (e.g. "running tests"), shown in every mode but quiet."""
        if self.mode == "quiet":
            return
        if self._live is not None:
            self._live.console.print(Text(text, style="dim"))
        else:
            self._write(text)

    def _write(self, line: str) -> None:
        """One plain line; when the reader has gone (``agentkit demo | head``) the display goes
        quiet and the run goes on."""
        try:
            print(line, file=self.stream, flush=True)
        except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
            self.mode = "quiet"

    # -- the live view's scroll ------------------------------------------------------------------
    def _print(self, renderable: Any) -> None:
        if self.mode != "live":
            return
        (self._live.console if self._live is not None else self._console).print(renderable)

    def _show_reply(self, reasoning: str | None, content: str | None) -> None:
        if reasoning and reasoning.strip():  # folded: one line, its length says how much there was
            words = len(reasoning.split())
            self._print(Text(f"▸ reasoning ({words} words): {_clip(reasoning, 100)}", style="dim italic"))
        if content and content.strip():
            self._print(Text(content.strip()))

    def _show_call(self, name: str | None, args: Any) -> None:
        text = Text()
        text.append(f"[{self.step}] ", style="bold cyan")
        text.append(f"{name} ", style="bold magenta")
        text.append(short_argument(name, args, width=200))
        self._print(text)
        diff = edit_diff(name, args)
        if diff:
            self._print(diff_text(diff))


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
            self._write(f"[step {self.step} | {self.tokens} tok | ${cost} | {self.elapsed:.1f}s] {line}")

def diff_text(diff: str, max_lines: int = DIFF_LINES) -> Text:
    """A unified diff coloured like git's: additions green, removals red, hunks cyan."""
    text = Text()
    lines = diff.splitlines()
    for line in lines[:max_lines]:
        style = ("bold" if line.startswith(("+++", "---")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "")
        text.append("  " + line + "\n", style=style)
    if len(lines) > max_lines:
        text.append(f"  … {len(lines) - max_lines} more diff lines\n", style="dim")
    text.rstrip()
    return text
