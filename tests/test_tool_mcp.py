"""MCPServer against a real MCP server (the mcp package's MCPServer, formerly FastMCP) over stdio."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from agentkit.errors import ToolError
from agentkit.tools.base import Tool, ToolContext, tool_schema
from agentkit.tools.mcp import MCPServer, MCPTool

SERVER = textwrap.dedent('''
    import os
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("calc")

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @app.tool()
    def shout(text: str, times: int = 1) -> str:
        """Upper-case the text, repeated."""
        return " ".join([text.upper()] * times)

    @app.tool()
    def fail(msg: str) -> str:
        """Always fails."""
        raise ValueError(msg)

    @app.tool()
    def crash() -> str:
        """Kills the server process."""
        os._exit(3)

    if __name__ == "__main__":
        app.run()
''')


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "calc_server.py"
    path.write_text(SERVER)
    return path


@pytest.fixture
async def calc(server_script: Path):
    async with MCPServer(command=[sys.executable, str(server_script)], name="calc", timeout=20) as srv:
        yield srv


async def test_tools_are_listed_namespaced_with_their_schemas(calc: MCPServer) -> None:
    by_name = {t.name: t for t in calc.tools}
    assert set(by_name) == {"calc__add", "calc__shout", "calc__fail", "calc__crash"}
    add = by_name["calc__add"]
    assert isinstance(add, Tool) and isinstance(add, MCPTool)
    assert add.description == "Add two integers."
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert by_name["calc__shout"].parameters["properties"]["times"]["default"] == 1
    assert tool_schema(add)["function"]["name"] == "calc__add"
    assert calc.server_name == "calc"


async def test_calls_return_the_servers_answer(calc: MCPServer) -> None:
    tools = {t.name: t for t in calc.tools}
    obs = await tools["calc__add"]({"a": 2, "b": 40}, ToolContext())
    assert not obs.is_error and obs.text == "42"
    assert obs.data["structured"] == {"result": 42} and obs.data["tool"] == "add"
    obs = await tools["calc__shout"]({"text": "hi", "times": 3}, ToolContext())
    assert obs.text == "HI HI HI"


async def test_tool_errors_become_error_observations(calc: MCPServer) -> None:
    tools = {t.name: t for t in calc.tools}
    obs = await tools["calc__fail"]({"msg": "nope"}, ToolContext())
    assert obs.is_error and "fail" in obs.text
    bad_args = await tools["calc__add"]({"a": "x"}, ToolContext())
    assert bad_args.is_error
    unknown = await calc.call("no_such_tool", {})
    assert unknown.is_error and "no_such_tool" in unknown.text


async def test_dead_server_is_reported_not_raised(server_script: Path) -> None:
    async with MCPServer(command=[sys.executable, str(server_script)], name="calc", timeout=10) as srv:
        tools = {t.name: t for t in srv.tools}
        crashed = await tools["calc__crash"]({}, ToolContext())
        assert crashed.is_error
        after = await tools["calc__add"]({"a": 1, "b": 1}, ToolContext())
        assert after.is_error


async def test_server_that_cannot_start(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="failed to start"):
        await MCPServer(command=[str(tmp_path / "missing-binary")]).start()
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.stderr.write('missing config file\\n')\nsys.exit(2)\n")
    with pytest.raises(ToolError, match="missing config file"):
        await MCPServer(command=[sys.executable, str(broken)], start_timeout=20).start()


def test_names_are_safe_for_openai_tool_names(server_script: Path) -> None:
    srv = MCPServer(command=[sys.executable, "/opt/my.server-v2.py"])
    assert srv.prefix == "my_server-v2"
    assert MCPTool(srv, "get.weather/now", "", {}).name == "my_server-v2__get_weather_now"


async def test_mcp_tools_inside_an_agent_run(calc: MCPServer, tmp_path: Path) -> None:
    import json

    from agentkit.agent import Agent, Limits
    from agentkit.models.replay import Replay

    turns = [{"content": None, "tool_calls": [{"name": "calc__add", "arguments": json.dumps({"a": 20, "b": 22})},
                                              {"name": "calc__fail", "arguments": json.dumps({"msg": "x"})}]},
             {"content": "The sum is 42."}]
    agent = Agent(Replay(turns), calc.tools, limits=Limits(max_steps=4), trajectory=tmp_path / "t.jsonl")
    result = await agent.run("add 20 and 22")
    assert result.status == "done" and result.answer == "The sum is 42."
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    results = [r for r in rows if r["type"] == "tool_result"]
    assert [r["name"] for r in results] == ["calc__add", "calc__fail"]
    assert results[0]["observation"]["text"] == "42" and results[1]["observation"]["is_error"]
    run = rows[0]
    assert {t["function"]["name"] for t in run["tools"]} >= {"calc__add", "calc__shout"}


# ------------------------------------------------------------------------------- hanging servers
SLOW_SERVER = textwrap.dedent('''
    import asyncio
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("slow")

    @app.tool()
    async def wait_forever() -> str:
        """Never answers."""
        await asyncio.sleep(3600)
        return "never"

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    if __name__ == "__main__":
        app.run()
''')

# Answers the handshake and the tool list by hand, then reads every request and answers none.
MUTE_SERVER = textwrap.dedent('''
    import json, sys
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("method") == "initialize":
            result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "mute", "version": "1"}}
        elif msg.get("method") == "tools/list":
            result = {"tools": [{"name": "ask", "description": "Never answers.",
                                 "inputSchema": {"type": "object", "properties": {}}}]}
        else:
            continue
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\\n")
        sys.stdout.flush()
''')


async def test_a_hanging_tool_call_is_an_error_and_the_session_lives_on(tmp_path: Path) -> None:
    import asyncio

    script = tmp_path / "slow.py"
    script.write_text(SLOW_SERVER)
    async with MCPServer(command=[sys.executable, str(script)], name="slow", timeout=1) as srv:
        tools = {t.name: t for t in srv.tools}
        obs = await asyncio.wait_for(tools["slow__wait_forever"]({}, ToolContext()), 15)
        assert obs.is_error and obs.text == "The MCP tool wait_forever did not answer within 1s."
        assert obs.data == {"server": "slow", "tool": "wait_forever", "timeout_s": 1}
        after = await asyncio.wait_for(tools["slow__add"]({"a": 1, "b": 2}, ToolContext()), 15)
        assert not after.is_error and after.text == "3"


async def test_a_mute_server_inside_an_agent_run(tmp_path: Path) -> None:
    """A server that never answers a call: the run goes on, the model reads the timeout."""
    import asyncio
    import json

    from agentkit.agent import Agent, Limits
    from agentkit.models.replay import Replay
    from agentkit.tools.base import TIMEOUT_MARGIN, tool_timeout

    script = tmp_path / "mute.py"
    script.write_text(MUTE_SERVER)
    async with MCPServer(command=[sys.executable, str(script)], name="mute", timeout=1) as srv:
        (ask,) = srv.tools
        assert tool_timeout(ask, {}) == 300.0  # the generic deadline leaves the server's own room
        srv.timeout = 500
        assert tool_timeout(ask, {}) == 500 + TIMEOUT_MARGIN
        srv.timeout = 1
        turns = [{"content": None, "tool_calls": [{"name": "mute__ask", "arguments": "{}"}]},
                 {"content": "It did not answer."}]
        agent = Agent(Replay(turns), srv.tools, limits=Limits(max_steps=3), trajectory=tmp_path / "t.jsonl")
        result = await asyncio.wait_for(agent.run("ask it"), 20)
    assert result.status == "done" and result.answer == "It did not answer."
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    (res,) = [r for r in rows if r["type"] == "tool_result"]
    assert res["observation"]["is_error"] and "did not answer within 1s" in res["message"]["content"]


async def test_the_per_call_timeout_does_not_cut_a_slow_start(tmp_path: Path) -> None:
    """A server that takes 2.5 s to come up starts under start_timeout even with a 1 s call timeout."""
    script = tmp_path / "late.py"
    script.write_text("import time\ntime.sleep(2.5)\n" + SLOW_SERVER)
    async with MCPServer(command=[sys.executable, str(script)], name="late", timeout=1, start_timeout=30) as srv:
        tools = {t.name: t for t in srv.tools}
        assert (await tools["late__add"]({"a": 2, "b": 2}, ToolContext())).text == "4"
