"""An agent whose tools come from an MCP server: start the server over stdio, hand its tools
(name-spaced as notes_server__add_note, ...) to the Agent, close it at the end.

    python examples/mcp/agent_with_mcp.py [MODEL]
    python examples/mcp/agent_with_mcp.py replay:examples/replays/mcp.jsonl     # offline
"""
import asyncio
import os
import sys
from pathlib import Path

from agentkit import Agent
from agentkit.models import make_model
from agentkit.tools import MCPServer

SERVER = Path(__file__).with_name("notes_server.py")


async def main(model_name: str) -> None:
    env = {**os.environ, "NOTES_FILE": os.environ.get("NOTES_FILE", "notes.json")}
    async with MCPServer(command=[sys.executable, str(SERVER)], env=env) as notes:
        print("MCP tools:", ", ".join(t.name for t in notes.tools))
        agent = Agent(make_model(model_name), tools=notes.tools, system="Keep the user's notes with the tools.")
        result = await agent.run("Note that the release is on Friday, then show me all my notes.")
    print(result.status, "|", result.answer)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "deepseek/deepseek-chat-v3.1"))
