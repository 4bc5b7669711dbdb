"""Built-in tools (installed as ``agentkit.tools``).

``code_tools()`` and ``search_tools()`` build the usual tool sets; each tool is also a plain class
you can construct with your own settings.
"""

from __future__ import annotations

from typing import Any

from agentkit.tools.base import Observation, Source, SourceTable, Tool, ToolContext, tool_schema
from agentkit.tools.editor import StrReplaceEditor
from agentkit.tools.fetch import FetchTool
from agentkit.tools.mcp import MCPServer, MCPTool
from agentkit.tools.python import PythonTool
from agentkit.tools.search import SearchTool
from agentkit.tools.search_backends import (DDGSBackend, FixtureBackend, LocalBackend, MultiBackend, SearchBackend,
                                            SearchHit, SearxngBackend, make_backend)
from agentkit.tools.shell import BashTool
from agentkit.tools.submit import SubmitTool

__all__ = [
    "BashTool", "DDGSBackend", "FetchTool", "FixtureBackend", "LocalBackend", "MCPServer", "MCPTool", "MultiBackend",
    "Observation", "PythonTool",
    "SearchBackend", "SearchHit", "SearchTool", "SearxngBackend", "Source", "SourceTable", "StrReplaceEditor",
    "SubmitTool", "Tool", "ToolContext", "code_tools", "make_backend", "search_tools", "tool_schema",
]


def code_tools(*, submit: bool = False, bash_timeout: float = 120.0) -> list[Any]:
    """``bash`` + ``str_replace_editor`` (+ ``submit``): the code agent's tools."""
    tools: list[Any] = [BashTool(default_timeout=bash_timeout), StrReplaceEditor()]
    if submit:
        tools.append(SubmitTool())
    return tools


def search_tools(backend: SearchBackend | str | None = None, *, fetch_allow: list[str] | None = None,
                 searxng_url: str | None = None, engines: str | None = None, python: bool = False) -> list[Any]:
    """``search`` + ``fetch`` (+ ``python``): the search agent's tools.

    ``backend`` is a backend object or its CLI spelling (``ddgs``, ``searxng``, ``fixture:PATH``, ``local:DIR``,
    or several joined by commas).
    """
    if isinstance(backend, str):
        backend = make_backend(backend, searxng_url=searxng_url, engines=engines)
    # file: URLs open only the documents of a local:DIR backend's folders
    tools: list[Any] = [SearchTool(backend), FetchTool(allow=fetch_allow, local_roots=getattr(backend, "roots", None))]
    if python:
        tools.append(PythonTool())
    return tools
