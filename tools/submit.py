"""The ``submit`` tool: an explicit end for presets that must not stop on a plain answer.

The agent loop ends the run when ``submit`` succeeds and takes ``summary`` as the answer; the tool
itself only acknowledges, and records the summary in the run's scratch data.
"""

from __future__ import annotations

from typing import Any

from agentkit.tools.base import Observation, ToolContext

__all__ = ["SubmitTool"]


class SubmitTool:
    """Declare the task finished."""

    name = "submit"
    description = (
        "Call this once, when the task is completely done and verified (for code: the change is made "
        "and the tests pass). It ends the run; nothing can be changed afterwards. Put a short summary "
        "of what you did, or the final answer, in `summary`."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "summary": {"type": "string",
                        "description": "A short summary of the work done, or the final answer."},
        },
        "required": [],
    }
    parallel_safe = False

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        summary = str(args.get("summary") or "").strip()
        ctx.data["submitted"] = True
        ctx.data["submit_summary"] = summary
        return Observation(text="Submitted. The run ends here.", data={"submitted": True, "summary": summary})
