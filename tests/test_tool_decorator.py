"""@tool: schema from type hints and docstring, validation through the same model, ctx injection."""

from __future__ import annotations

import asyncio
import threading
from typing import Literal, Optional

import pytest
from pydantic import BaseModel

from agentkit.errors import ToolError
from agentkit.tools.base import (FunctionTool, Observation, Tool, ToolContext, parse_docstring, tool,
                                 tool_schema, validate_arguments)


class Point(BaseModel):
    x: int
    y: int = 0


@tool
def draw(label: str, kind: Literal["dot", "cross"] = "dot", size: Optional[int] = None,
         points: list[Point] = [], ctx: ToolContext = None) -> str:  # noqa: B006  # type: ignore[assignment]
    """Draw points on the canvas.

    Args:
        label: text shown next to
            the drawing.
        kind (str): the marker shape.
        size: marker size in pixels.
    Returns:
        a summary.
    """
    ctx.data.setdefault("drawn", []).append(label)
    return f"{label}:{kind}:{size}:" + ",".join(f"{p.x}/{p.y}" for p in points)


def test_schema_from_hints_and_docstring() -> None:
    assert isinstance(draw, Tool) and isinstance(draw, FunctionTool)
    assert draw.name == "draw"
    assert draw.description == "Draw points on the canvas."
    p = draw.parameters
    assert p["type"] == "object" and p["required"] == ["label"]
    props = p["properties"]
    assert set(props) == {"label", "kind", "size", "points"}  # ctx is not part of the schema
    assert props["label"] == {"type": "string", "description": "text shown next to the drawing."}
    assert props["kind"]["enum"] == ["dot", "cross"] and props["kind"]["default"] == "dot"
    assert props["kind"]["description"] == "the marker shape."
    assert {"type": "null"} in props["size"]["anyOf"] and props["size"]["default"] is None
    item = props["points"]["items"]  # nested model inlined, no $ref left
    assert item["properties"]["x"] == {"type": "integer"} and item["required"] == ["x"]
    assert "$defs" not in p and "title" not in p
    assert tool_schema(draw)["function"]["name"] == "draw"


async def test_call_validates_and_injects_context() -> None:
    ctx = ToolContext()
    obs = await draw({"label": "a", "points": [{"x": 1}, {"x": 2, "y": 3}]}, ctx)
    assert obs == Observation(text="a:dot:None:1/0,2/3")
    assert ctx.data["drawn"] == ["a"]
    with pytest.raises(ToolError) as e:
        await draw({"kind": "star", "extra": 1}, ctx)
    msg = str(e.value)
    assert "label: Field required" in msg and "kind: Input should be 'dot' or 'cross'" in msg
    assert "extra: unexpected argument" in msg


async def test_async_and_sync_functions_and_return_types() -> None:
    @tool(name="add", parallel_safe=False)
    async def add_numbers(a: int, b: int = 2) -> dict:
        """Add two numbers."""
        await asyncio.sleep(0)
        return {"sum": a + b}

    assert add_numbers.name == "add" and add_numbers.parallel_safe is False
    assert (await add_numbers({"a": 1}, ToolContext())).text == '{"sum": 3}'

    seen: list[str] = []

    @tool
    def blocking() -> Observation:
        """Runs in a worker thread so it cannot stall the event loop."""
        seen.append(threading.current_thread().name)
        return Observation(text="x", is_error=True)

    obs = await blocking({}, ToolContext())
    assert obs.is_error and seen and seen[0] != threading.main_thread().name


def test_docstring_parser_handles_types_and_continuations() -> None:
    summary, args = parse_docstring("""Top line.

    Args:
        a (int): first
            continued
        b: second
    Raises:
        ValueError: never
    """)
    assert summary == "Top line."
    assert args == {"a": "first continued", "b": "second"}


async def test_validate_arguments_for_plain_schema_tools() -> None:
    class Raw:
        name, description, parallel_safe = "raw", "a hand-written tool", True
        parameters = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
                      "additionalProperties": False}

        async def __call__(self, args, ctx):  # pragma: no cover - not called here
            return Observation(text="")

    assert validate_arguments(Raw(), {"n": 1}) == {"n": 1}
    with pytest.raises(ToolError, match="'n' is a required property"):
        validate_arguments(Raw(), {})
    with pytest.raises(ToolError, match="n: 'x' is not of type 'integer'"):
        validate_arguments(Raw(), {"n": "x"})
    with pytest.raises(ToolError, match="must be a JSON object"):
        validate_arguments(draw, [1])


async def test_tool_defined_inside_a_function_resolves_local_types() -> None:
    class Local(BaseModel):
        v: int

    @tool
    def local(item: Local, ctx: ToolContext) -> str:
        """Uses a type only visible in this function."""
        return str(item.v + len(ctx.run_id))

    assert local.parameters["properties"]["item"]["properties"]["v"] == {"type": "integer"}
    assert (await local({"item": {"v": 1}}, ToolContext(run_id="ab"))).text == "3"

    @tool(name="local2")
    def local_named(item: Local) -> str:
        """Same, through the parametrized form."""
        return str(item.v)

    assert (await local_named({"item": {"v": 7}}, ToolContext())).text == "7"
