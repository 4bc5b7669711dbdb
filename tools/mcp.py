"""MCP servers as agentkit tools: start a server over stdio and expose each of its tools.

``MCPServer(command=[...])`` spawns the server with the official ``mcp`` package and lists its
tools; each becomes an ``MCPTool`` named ``<server>__<tool>`` (OpenAI tool names allow neither
dots nor slashes) whose JSON schema is the server's own. Tool failures, timeouts and a dead
server become error observations, never exceptions in the agent loop.

The stdio client and session are async context managers tied to the task that opened them, so
one background task owns them for the server's whole life; calls from any task in the same event
loop go through the session.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from agentkit.errors import ToolError
from agentkit.tools.base import Observation, ToolContext

__all__ = ["MCPServer", "MCPTool"]

_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")


def _safe_name(text: str) -> str:
    return _NAME_BAD.sub("_", text).strip("_") or "mcp"


def _content_text(block: Any) -> str:
    """One MCP content block as text the model can read."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(getattr(block, "text", ""))
    if kind in ("image", "audio"):
        return f"[{kind} content: {getattr(block, 'mime_type', None) or getattr(block, 'mimeType', '')}]"
    if kind == "resource":
        res = getattr(block, "resource", None)
        text = getattr(res, "text", None)
        return str(text) if text is not None else f"[resource {getattr(res, 'uri', '')}]"
    if kind == "resource_link":
        return f"[resource link {getattr(block, 'uri', '')}]"
    return str(block)


class MCPTool:
    """One tool of an MCP server, callable like any agentkit tool."""

    def __init__(self, server: "MCPServer", remote_name: str, description: str,
                 parameters: dict[str, Any], parallel_safe: bool = False) -> None:
        self.server = server
        self.remote_name = remote_name
        self.name = f"{server.prefix}__{_safe_name(remote_name)}"[:64]
        self.description = description or f"The {remote_name} tool of the {server.prefix} MCP server."
        self.parameters = parameters or {"type": "object", "properties": {}}
        self.parallel_safe = parallel_safe

    @property
    def timeout(self) -> float | None:
        """The server's per-call deadline, so the agent's generic tool deadline leaves it room."""
        return self.server.timeout

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        return await self.server.call(self.remote_name, args)


class MCPServer:
    """A running MCP server reached over stdio; ``tools`` holds its tools once started.

    Use ``async with MCPServer(command=["python", "server.py"]) as srv: agent_tools += srv.tools``
    or ``await srv.start()`` / ``await srv.close()``.
    """

    def __init__(self, command: list[str], *, name: str | None = None, env: dict[str, str] | None = None,
                 cwd: str | Path | None = None, timeout: float = 60.0, start_timeout: float = 30.0,
                 parallel_safe: bool = False) -> None:
        if not command:
            raise ToolError("MCPServer needs a command, e.g. MCPServer(command=['python', 'server.py']).")
        self.command = list(command)
        self.prefix = _safe_name(name or Path(self.command[-1]).stem or Path(self.command[0]).name)
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.parallel_safe = parallel_safe
        self.tools: list[MCPTool] = []
        self.server_name = ""
        self._session: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")

    # -- lifecycle ------------------------------------------------------------------------------
    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines the server wrote to stderr (for error messages)."""
        try:
            self._errlog.flush()
            self._errlog.seek(0)
            return "\n".join(self._errlog.read().splitlines()[-lines:])
        except (OSError, ValueError):
            return ""

    async def _own(self) -> None:
        from mcp import ClientSession, StdioServerParameters, stdio_client
        from mcp.types import PaginatedRequestParams

        params = StdioServerParameters(command=self.command[0], args=self.command[1:], env=self.env, cwd=self.cwd)
        try:
            async with stdio_client(params, errlog=self._errlog) as (read, write):
                # no session-wide read timeout: start_timeout bounds the handshake, timeout each call
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    self.server_name = getattr(getattr(init, "server_info", None), "name", "") or ""
                    listed, cursor = [], None
                    while True:
                        page = await session.list_tools(
                            params=PaginatedRequestParams(cursor=cursor) if cursor else None)
                        listed.extend(page.tools)
                        cursor = getattr(page, "next_cursor", None)
                        if not cursor:
                            break
                    self.tools = [MCPTool(self, t.name, t.description or "", dict(t.input_schema or {}),
                                          self.parallel_safe) for t in listed]
                    self._session = session
                    self._ready.set()
                    await self._stop.wait()
        except BaseException as e:  # noqa: BLE001 - reported to whoever awaits start()/call()
            self._error = e
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self._session = None
            self._ready.set()

    async def start(self) -> list[MCPTool]:
        """Spawn the server, handshake and list its tools; raises ``ToolError`` if it cannot start."""
        if self._task is None:
            self._task = asyncio.create_task(self._own(), name=f"mcp:{self.prefix}")
        try:
            await asyncio.wait_for(self._ready.wait(), self.start_timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise ToolError(f"MCP server {self.command!r} did not answer within {self.start_timeout:g}s; "
                            f"check that it speaks MCP over stdio. {self.stderr_tail()}".strip()) from None
        if self._session is None:
            err = self._error
            detail = f"{type(err).__name__}: {err}" if err else "it exited"
            raise ToolError(f"MCP server {self.command!r} failed to start ({detail}). "
                            f"{self.stderr_tail()}".strip())
        return self.tools

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                self._task.cancel()
                try:
                    await self._task
                except BaseException:  # noqa: BLE001
                    pass
        self._session = None
        try:
            self._errlog.close()
        except OSError:
            pass

    async def __aenter__(self) -> "MCPServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- calls ----------------------------------------------------------------------------------
    async def call(self, tool: str, args: dict[str, Any]) -> Observation:
        """Call ``tool`` on the server; every failure is an error observation."""
        session = self._session
        if session is None:
            why = f" ({type(self._error).__name__}: {self._error})" if self._error else ""
            return Observation(is_error=True, text=f"The MCP server {self.prefix} is not running{why}; "
                                                   "its tools cannot be used in this run.")
        try:
            result = await asyncio.wait_for(session.call_tool(tool, args or {}), self.timeout)
        except asyncio.TimeoutError:  # the server hangs: the call is cancelled, the session stays usable
            return Observation(is_error=True, text=f"The MCP tool {tool} did not answer within {self.timeout:g}s.",
                               data={"server": self.prefix, "tool": tool, "timeout_s": self.timeout})
        except Exception as e:  # noqa: BLE001 - protocol errors, a dead server
            return Observation(is_error=True, text=f"The MCP tool {tool} failed: {type(e).__name__}: {e}")
        content = getattr(result, "content", None) or []
        text = "\n".join(_content_text(b) for b in content).strip()
        structured = getattr(result, "structured_content", None)
        is_error = bool(getattr(result, "is_error", False))
        if not text and structured is not None:
            import json
            text = json.dumps(structured, ensure_ascii=False)
        data: dict[str, Any] = {"server": self.prefix, "tool": tool}
        if structured is not None:
            data["structured"] = structured
        return Observation(text=text or ("(error with no message)" if is_error else "(no output)"),
                           is_error=is_error, data=data)


def python_command(script: str | Path, *args: str) -> list[str]:
    """``[sys.executable, script, *args]``: start a Python MCP server with this interpreter."""
    return [sys.executable, os.fspath(script), *args]
