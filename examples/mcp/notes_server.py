"""A small MCP server (stdio) with two tools over a JSON notes file, for `agent_with_mcp.py`.

    NOTES_FILE=notes.json python examples/mcp/notes_server.py     # speaks MCP on stdin/stdout
"""
import json
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer  # mcp 2.x (FastMCP in mcp 1.x)

app = MCPServer("notes")
NOTES = Path(os.environ.get("NOTES_FILE", "notes.json"))


def _load() -> list[str]:
    return json.loads(NOTES.read_text()) if NOTES.exists() else []


@app.tool()
def add_note(text: str) -> str:
    """Save a short note for later."""
    notes = _load() + [text]
    NOTES.write_text(json.dumps(notes, indent=1))
    return f"saved note #{len(notes)}"


@app.tool()
def list_notes() -> str:
    """All saved notes, numbered."""
    return "\n".join(f"{i}. {n}" for i, n in enumerate(_load(), 1)) or "(no notes)"


if __name__ == "__main__":
    app.run()
