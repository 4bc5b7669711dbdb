"""Concrete tool objects for a preset's tool names, configured from ``ToolOptions``.

Tools are looked up by their ``name`` attribute in the module that defines them, so this file only
knows which module holds which tool and which options each takes.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import importlib
import inspect
import json
import sys
from typing import Any

from agentkit.errors import ConfigError
from agentkit.presets.base import ToolOptions
from agentkit.tools.base import Observation, ToolContext

_MODULES = {
    "bash": "agentkit.tools.shell", "str_replace_editor": "agentkit.tools.editor",
    "search": "agentkit.tools.search", "fetch": "agentkit.tools.fetch",
    "python": "agentkit.tools.python", "submit": "agentkit.tools.submit",
}


def tool_class(name: str) -> type:
    """The class in ``agentkit.tools`` whose instances are the tool called ``name``."""
    module_name = _MODULES.get(name)
    if module_name is None:
        raise ConfigError(f"unknown tool {name!r}; known tools: {', '.join(sorted(_MODULES))}")
    module = importlib.import_module(module_name)
    for obj in vars(module).values():
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and getattr(obj, "name", None) == name:
            return obj
    raise ConfigError(f"tool {name!r} not found in {module_name}")  # pragma: no cover - packaging error


def _accepts(cls: type, key: str) -> bool:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return key in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _kwargs(cls: type, candidates: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in candidates.items() if v is not None and _accepts(cls, k)}


def search_backend(spec: str) -> Any:
    """A search backend from its CLI spelling: duckduckgo/ddgs, searxng:URL, fixture:FILE, local:DIR, or several
    joined by commas."""
    from agentkit.tools.search_backends import make_backend

    return make_backend(spec)


def make_tool(name: str, options: ToolOptions) -> Any:
    cls = tool_class(name)
    if name == "search":
        backend = search_backend(options.search_backend) if options.search_backend else None
        tool: Any = cls(backend=backend)
        if options.max_searches is not None:
            tool = LimitedSearch(tool, options.max_searches)
    elif name == "fetch":
        from agentkit.tools.search_backends import local_roots

        tool = cls(**_kwargs(cls, {"allow": options.fetch_allow or None,
                                   "local_roots": local_roots(options.search_backend) or None}))
    else:
        tool = cls()
    if name in ("bash", "str_replace_editor") and options.confirm:
        tool = ConfirmShell(tool)
    return tool


class _Wrapper:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.description, self.parameters = inner.name, inner.description, inner.parameters
        self.parallel_safe = bool(getattr(inner, "parallel_safe", False))


class LimitedSearch(_Wrapper):
    """The search tool with a budget of calls per run (``--max-searches``)."""

    def __init__(self, inner: Any, max_searches: int) -> None:
        super().__init__(inner)
        self.max_searches = max_searches

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        used = ctx.data.get("searches_used", 0)
        if used >= self.max_searches:
            return Observation(text=f"The search budget of this run ({self.max_searches} searches) is used up. "
                                    "Answer with what you have found, citing those sources.", is_error=True)
        ctx.data["searches_used"] = used + 1
        return await self.inner(args, ctx)


def build_tools(names: list[str], options: ToolOptions) -> list[Any]:
    return [make_tool(n, options) for n in names]


def json_args(arguments: Any) -> Any:
    """A tool call's arguments as parsed JSON (the string itself when it is not JSON)."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments
    return arguments


def edit_diff(name: str | None, arguments: Any) -> str | None:
    """The edit a ``str_replace_editor`` call makes, as a unified diff (None for views and other tools)."""
    args = json_args(arguments)
    if name != "str_replace_editor" or not isinstance(args, dict):
        return None
    path, command = str(args.get("path") or "?"), args.get("command")
    old: str | None
    if command == "str_replace":
        old, new = str(args.get("old_str") or ""), str(args.get("new_str") or "")
    elif command == "create":
        old, new = None, str(args.get("file_text") or "")
    elif command == "insert":
        old, new = "", str(args.get("new_str") or "")
        path = f"{path} (after line {args.get('insert_line', '?')})"
    else:
        return None
    lines = difflib.unified_diff((old or "").splitlines(), new.splitlines(),
                                 "/dev/null" if old is None else f"a/{path}", f"b/{path}", lineterm="", n=2)
    return "\n".join(lines)


class StopRun(asyncio.CancelledError):
    """The user answered "stop" to a ``--confirm`` question: the run ends as Ctrl-C ends it (cancelled,
    resumable)."""


class ConfirmShell(_Wrapper):
    """Wraps the shell tool or the editor and asks on the terminal before each command or file edit
    (``--confirm``); an edit is shown as the diff it makes, a look at a file is not asked about.

    Answers: y = do it, n = refuse, a = always (this and every later call of this tool), e = edit the
    command (the shell; the next line read is the command run instead), s = stop the run (as Ctrl-C:
    cancelled, resumable); anything else is a refusal with that reason. A refusal becomes an error
    observation, so the model hears that the user said no and why.
    """

    def __init__(self, inner: Any, ask: Any = None) -> None:
        super().__init__(inner)
        self.parallel_safe = False
        self._ask = ask or functools.partial(_ask_terminal, inner.name)
        self._always = False

    def _question(self, args: dict[str, Any]) -> str | None:
        """What to show the user, or None when the call needs no question (a file view)."""
        if self.name != "str_replace_editor":
            return str(args.get("command", ""))
        command = args.get("command")
        if command == "undo_edit":
            return f"undo the last edit of {args.get('path')}"
        return edit_diff(self.name, args)

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        question = None if self._always else self._question(args)
        edited = None
        if question is not None:
            answer = (await asyncio.to_thread(self._ask, question)).strip()
            low = answer.lower()
            if low in ("a", "always"):
                self._always = True
            elif low in ("s", "stop"):
                raise StopRun("the user stopped the run")
            elif self.name == "bash" and (low.startswith("e ") or low.startswith("edit ")):
                edited = answer.split(" ", 1)[1].strip()
                args = {**args, "command": edited}
            elif low not in ("y", "yes"):
                reason = answer if low not in ("", "n", "no") else ""
                what = "run this command" if self.name == "bash" else "make this edit"
                text = f"The user declined to {what}." + (f" They said: {reason}" if reason else "")
                return Observation(text=text + " Do something else or ask for what you need in your answer.",
                                   is_error=True)
        obs = await self.inner(args, ctx)
        if edited is not None:
            obs = Observation(text=f"[The user changed the command to: {edited}]\n{obs.text}", is_error=obs.is_error,
                              data=obs.data)
        return obs


def _ask_terminal(tool: str, question: str) -> str:
    """Ask on the terminal (stderr; the answer from stdin). EOF refuses."""
    if tool == "bash":
        print(f"\nThe agent wants to run:\n  $ {question}", file=sys.stderr)
        options = "[y]es / [n]o / [a]lways for this tool / [e] NEW COMMAND to run that instead / [s]top the run"
    else:
        print(f"\nThe agent wants to edit a file:\n{question}", file=sys.stderr)
        options = "[y]es / [n]o / [a]lways for this tool / [s]top the run"
    print(f"{options} / or type a reason to refuse: ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if line.strip().lower() in ("e", "edit") and tool == "bash":
        print("new command: ", end="", file=sys.stderr, flush=True)
        new = sys.stdin.readline().strip()
        return f"e {new}" if new else "n"
    return line if line else "n"  # EOF: refuse
