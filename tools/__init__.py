"""Built-in tools (installed as ``agentkit.tools``)."""

from agentkit.tools.base import Observation, Source, SourceTable, Tool, ToolContext, tool_schema
from agentkit.tools.fetch import FetchTool
from agentkit.tools.mcp import MCPServer, MCPTool
from agentkit.tools.search import SearchTool
from agentkit.tools.search_backends import DDGSBackend, FixtureBackend, SearchHit, SearxngBackend, make_backend
from agentkit.tools.submit import SubmitTool

__all__ = [
    "DDGSBackend", "FetchTool", "FixtureBackend", "MCPServer", "MCPTool", "Observation", "SearchHit",
    "SearchTool", "SearxngBackend", "Source", "SourceTable", "SubmitTool", "Tool", "ToolContext",
    "make_backend", "tool_schema",
]
