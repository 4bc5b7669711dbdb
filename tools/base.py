"""The tool contract: what a tool is, what it gets, and what it returns.

A tool returns an ``Observation`` written for the model; it never prints. Exceptions and bad
arguments are turned into error observations by the agent, so the model can correct itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Observation(BaseModel):
    """What a tool call produced: ``text`` goes to the model, ``data`` to the trajectory only."""

    text: str
    is_error: bool = False
    data: dict[str, Any] | None = None


class Source(BaseModel):
    n: int
    url: str
    title: str = ""


class SourceTable:
    """Numbered sources of one run (search results and fetched pages), deduplicated by URL.

    Numbers are stable for the whole run so the answer's ``[citation:N]`` resolve to URLs.
    """

    def __init__(self, sources: list[Source] | None = None) -> None:
        self._by_url: dict[str, Source] = {}
        for s in sources or []:
            self._by_url[s.url] = s

    def add(self, url: str, title: str = "") -> int:
        src = self._by_url.get(url)
        if src is None:
            src = Source(n=len(self._by_url) + 1, url=url, title=title)
            self._by_url[url] = src
        elif title and not src.title:
            src.title = title
        return src.n

    def get(self, n: int) -> Source | None:
        return next((s for s in self._by_url.values() if s.n == n), None)

    def all(self) -> list[Source]:
        return sorted(self._by_url.values(), key=lambda s: s.n)

    def __len__(self) -> int:
        return len(self._by_url)


@dataclass
class ToolContext:
    """Everything a tool may use during a run."""

    sandbox: Any = None  # an agentkit.sandboxes.Sandbox, or None for tools that need none
    settings: dict[str, Any] = field(default_factory=dict)  # the run's settings (no secrets)
    sources: SourceTable = field(default_factory=SourceTable)
    data: dict[str, Any] = field(default_factory=dict)  # per-run scratch space shared by tools
    run_id: str = ""


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    parallel_safe: bool  # may run concurrently with other parallel-safe calls of the same turn

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation: ...


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The OpenAI ``tools`` entry for a tool."""
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}
