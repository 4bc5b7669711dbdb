"""The ``python`` tool: run a snippet in a fresh Python process inside the sandbox.

A fresh process per call means no state leaks between snippets (unlike a notebook); the code is
passed through a quoted here-document, so it needs no escaping and never touches the workspace.
"""

from __future__ import annotations

import uuid
from typing import Any

from agentkit.tools.base import Observation, ToolContext
from agentkit.tools.shell import format_exec_result

__all__ = ["PythonTool"]


class PythonTool:
    """Execute Python code and return what it printed (stdout and stderr, tracebacks included)."""

    name = "python"
    parallel_safe = False

    def __init__(self, *, interpreter: str = "python3", timeout: float = 120.0) -> None:
        self.interpreter = interpreter
        self.timeout = timeout
        self.description = (
            "Run Python 3 code in a fresh process in the workspace and return everything it printed "
            "(stdout and stderr, including any traceback) and the exit code. Nothing is kept between "
            "calls: each call starts from scratch, so put imports and definitions in the same snippet. "
            "Use print() to see values. Only the standard library and packages installed in the sandbox "
            f"are available. Calls are killed after {timeout:g} seconds."
        )
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python source code to run."}},
            "required": ["code"],
        }

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        code = str(args.get("code") or "")
        if not code.strip():
            return Observation(text="Give the Python source to run in `code`.", is_error=True)
        if ctx.sandbox is None:
            return Observation(text="No sandbox is attached to this run, so code cannot be run.", is_error=True)
        delim = f"AGENTKIT_PY_{uuid.uuid4().hex}"
        command = f"{self.interpreter} - <<'{delim}'\n{code}\n{delim}"
        res = await ctx.sandbox.run(command, timeout=self.timeout)
        text = format_exec_result(res, self.timeout)
        failed = bool(res.timed_out) or (res.exit_code not in (0, None))
        return Observation(text=text, is_error=failed,
                           data={"exit_code": res.exit_code, "timed_out": res.timed_out,
                                 "truncated": res.truncated, "duration_s": res.duration_s})
