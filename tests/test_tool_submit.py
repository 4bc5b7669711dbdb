"""The submit tool: its fixed interface and what it records."""

from __future__ import annotations

from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.submit import SubmitTool


async def test_submit_records_the_summary() -> None:
    ctx = ToolContext()
    tool = SubmitTool()
    assert isinstance(tool, Tool) and tool.name == "submit"
    assert list(tool.parameters["properties"]) == ["summary"] and tool.parameters["required"] == []
    obs = await tool({"summary": "Fixed the off-by-one in slice()."}, ctx)
    assert not obs.is_error and obs.data == {"submitted": True, "summary": "Fixed the off-by-one in slice()."}
    assert ctx.data["submitted"] is True and ctx.data["submit_summary"] == "Fixed the off-by-one in slice()."
    bare = await tool({}, ToolContext())
    assert not bare.is_error and bare.data["summary"] == ""
