"""The ``bash`` tool: one command in the sandbox's persistent shell session.

The session keeps the working directory and exported variables between calls, like a terminal.
The observation is the command's output followed by one bracketed line per fact the model needs:
the exit code, a timeout, a restarted session, or where the full output was saved when it was cut.
"""

from __future__ import annotations

from typing import Any

from agentkit.tools.base import Observation, ToolContext

__all__ = ["BashTool", "format_exec_result"]


def format_exec_result(res: Any, timeout: float | None = None) -> str:
    """An ``ExecResult`` as the text the model reads."""
    out = res.output.rstrip("\n")
    lines = [out if out.strip() else "(no output)"]
    if res.timed_out:
        limit = f" after {timeout:g}s" if timeout else ""
        lines.append(f"[The command timed out{limit} and was killed; the output above is what it printed so far. "
                     "Run long jobs in the background (cmd > log 2>&1 &) and poll the log, or pass a larger "
                     "`timeout`.]")
    if res.restarted:
        lines.append(f"[{res.note}]" if res.note else "[The shell session had died and was restarted: the "
                     "working directory and exported variables were reset.]")
    if res.truncated:
        where = f" The full output is saved in {res.full_output_path}; search it with grep or read parts " \
                "with sed -n." if res.full_output_path else ""
        lines.append(f"[Output truncated: the middle was left out.{where}]")
    if res.note and not (res.timed_out or res.restarted) and res.note not in "\n".join(lines):
        lines.append(f"[{res.note}]")
    if res.exit_code is not None:
        lines.append(f"[exit code: {res.exit_code}]")
    return "\n".join(lines)


class BashTool:
    """Run a shell command in the sandbox."""

    name = "bash"
    parallel_safe = False

    def __init__(self, *, default_timeout: float = 120.0, max_timeout: float = 900.0) -> None:
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout
        self.description = (
            "Run a bash command in the workspace's persistent shell session: the working directory and "
            "exported variables carry over between calls, like a terminal. Returns the combined "
            "stdout/stderr and the exit code. Commands cannot read input: use non-interactive flags "
            "(e.g. `apt-get -y`, `git --no-pager`). Very long output is cut in the middle and saved to a "
            f"file whose path is shown. A command is killed after `timeout` seconds (default "
            f"{default_timeout:g}, at most {max_timeout:g}); run servers and long jobs in the background "
            "with output redirected to a log file."
        )
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The bash command to run."},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": max_timeout,
                            "description": f"Seconds before the command is killed (default {default_timeout:g})."},
            },
            "required": ["command"],
        }

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        command = str(args.get("command") or "")
        if not command.strip():
            return Observation(text="Give a non-empty `command` to run.", is_error=True)
        if ctx.sandbox is None:
            return Observation(text="No sandbox is attached to this run, so commands cannot be run.", is_error=True)
        timeout = args.get("timeout")
        try:
            t = float(timeout) if timeout is not None else self.default_timeout
        except (TypeError, ValueError):
            return Observation(text="`timeout` must be a number of seconds.", is_error=True)
        t = max(1.0, min(t, self.max_timeout))
        res = await ctx.sandbox.run(command, timeout=t)
        data = {"exit_code": res.exit_code, "timed_out": res.timed_out, "truncated": res.truncated,
                "restarted": res.restarted, "full_output_path": res.full_output_path,
                "duration_s": res.duration_s}
        return Observation(text=format_exec_result(res, t), is_error=bool(res.timed_out), data=data)
