"""Concrete tool objects for a preset's tool names, configured from ``ToolOptions``.

Tools are looked up by their ``name`` attribute in the module that defines them, so this file only
knows which module holds which tool and which options each takes.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
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
    if name == "bash" and options.confirm:
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


class ConfirmShell(_Wrapper):
    """Wraps the shell tool and asks on the terminal before each command (``--confirm``).

    Answers: y = run it, a = run this and every later command, anything else = refuse; a refusal
    becomes an error observation, so the model hears that the user said no and why.
    """

    def __init__(self, inner: Any, ask: Any = None) -> None:
        super().__init__(inner)
        self.parallel_safe = False
        self._ask = ask or _ask_terminal
        self._always = False

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        if not self._always:
            answer = (await asyncio.to_thread(self._ask, str(args.get("command", "")))).strip().lower()
            if answer in ("a", "always"):
                self._always = True
            elif answer not in ("y", "yes"):
                reason = answer if answer not in ("", "n", "no") else ""
                text = "The user declined to run this command." + (f" They said: {reason}" if reason else "")
                return Observation(text=text + " Do something else or ask for what you need in your answer.",
                                   is_error=True)
        return await self.inner(args, ctx)


def _ask_terminal(command: str) -> str:
    print(f"\nThe agent wants to run:\n  $ {command}", file=sys.stderr)
    print("Run it? [y]es / [n]o / [a]lways / or type a reason to refuse: ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    return line if line else "n"  # EOF: refuse
