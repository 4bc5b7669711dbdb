"""The tool contract: what a tool is, what it gets, and what it returns.

A tool returns an ``Observation`` written for the model; it never prints. Exceptions and bad
arguments are turned into error observations by the agent, so the model can correct itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Observation(BaseModel):
    """What a tool call produced: ``text`` goes to the model, ``data`` to the trajectory only."""

    text: str
    is_error: bool = False
    data: dict[str, Any] | None = None


class Source(BaseModel):
    n: int
    url: str
    title: str = ""


class SourceTable:
    """Numbered sources of one run (search results and fetched pages), deduplicated by URL.

    Numbers are stable for the whole run so the answer's ``[citation:N]`` resolve to URLs.
    """

    def __init__(self, sources: list[Source] | None = None) -> None:
        self._by_url: dict[str, Source] = {}
        for s in sources or []:
            self._by_url[s.url] = s

    def add(self, url: str, title: str = "") -> int:
        src = self._by_url.get(url)
        if src is None:
            src = Source(n=len(self._by_url) + 1, url=url, title=title)
            self._by_url[url] = src
        elif title and not src.title:
            src.title = title
        return src.n

    def get(self, n: int) -> Source | None:
        return next((s for s in self._by_url.values() if s.n == n), None)

    def all(self) -> list[Source]:
        return sorted(self._by_url.values(), key=lambda s: s.n)

    def __len__(self) -> int:
        return len(self._by_url)


@dataclass
class ToolContext:
    """Everything a tool may use during a run."""

    sandbox: Any = None  # an agentkit.sandboxes.Sandbox, or None for tools that need none
    settings: dict[str, Any] = field(default_factory=dict)  # the run's settings (no secrets)
    sources: SourceTable = field(default_factory=SourceTable)
    data: dict[str, Any] = field(default_factory=dict)  # per-run scratch space shared by tools
    run_id: str = ""


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    parallel_safe: bool  # may run concurrently with other parallel-safe calls of the same turn

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation: ...


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The OpenAI ``tools`` entry for a tool."""
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}


# --- @tool: a typed Python function becomes a Tool ------------------------------------------

import asyncio  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import typing  # noqa: E402
from typing import Callable  # noqa: E402

from pydantic import ConfigDict, ValidationError, create_model  # noqa: E402

from agentkit.errors import ToolError  # noqa: E402

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?)\s*:\s*$")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into the summary text and per-argument descriptions."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section, current, indent = None, None, 0
    for line in lines:
        m = _SECTION.match(line)
        if m:
            section, current = m.group(1).lower(), None
            continue
        if section is None:
            summary.append(line)
        elif section in ("args", "arguments", "parameters", "params"):
            if not line.strip():
                continue
            this_indent = len(line) - len(line.lstrip())
            am = _ARG_LINE.match(line)
            if am and (current is None or this_indent <= indent):
                current, indent = am.group(1), this_indent
                args[current] = am.group(3).strip()
            elif current is not None:
                args[current] = (args[current] + " " + line.strip()).strip()
    return "\n".join(summary).strip(), args


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``$ref``s to ``$defs`` by their definitions (kept as-is when recursive)."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                key = ref.split("/")[-1]
                if key in seen or key not in defs:
                    raise RecursionError(key)
                merged = {**defs[key], **{k: v for k, v in node.items() if k != "$ref"}}
                return walk(merged, seen + (key,))
            return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    try:
        return walk(schema, ())
    except RecursionError:
        return schema


def _strip_titles(node: Any) -> Any:
    """Drop pydantic's auto ``title`` keys (noise in the prompt); keep property names called title."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "title" and isinstance(v, str):
                continue
            out[k] = {pk: _strip_titles(pv) for pk, pv in v.items()} if k in ("properties", "$defs") \
                and isinstance(v, dict) else _strip_titles(v)
        return out
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def _is_ctx(param: inspect.Parameter, hint: Any) -> bool:
    return hint is ToolContext or (param.name == "ctx" and hint is inspect.Parameter.empty)


class FunctionTool:
    """A Tool made from a typed function by ``@tool``; arguments are checked by ``args_model``."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, description: str | None = None,
                 parallel_safe: bool = True, localns: dict[str, Any] | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        summary, arg_docs = parse_docstring(fn.__doc__)
        self.description = description if description is not None else summary
        self.parallel_safe = parallel_safe
        # localns: names visible where the function was defined (a tool made inside a function)
        hints = typing.get_type_hints(fn, localns={"ToolContext": ToolContext, **(localns or {})},
                                      include_extras=True)
        fields: dict[str, Any] = {}
        self._ctx_param: str | None = None
        for p in inspect.signature(fn).parameters.values():
            hint = hints.get(p.name, inspect.Parameter.empty)
            if _is_ctx(p, hint):
                self._ctx_param = p.name
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"@tool {self.name}: *args/**kwargs cannot be described to a model")
            annotation = Any if hint is inspect.Parameter.empty else hint
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (annotation, Field(default, description=arg_docs.get(p.name) or None))
        self.args_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{self.name}_args", __config__=ConfigDict(extra="forbid"), **fields)
        schema = _strip_titles(_inline_refs(self.args_model.model_json_schema()))
        schema.pop("additionalProperties", None)
        schema.setdefault("properties", {})
        self.parameters: dict[str, Any] = {"type": "object", **schema}

    def validate(self, args: dict[str, Any]) -> BaseModel:
        """The validated arguments; raises ``ToolError`` naming each bad argument."""
        try:
            return self.args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolError(format_validation_error(exc)) from None

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        model = self.validate(args)
        kwargs = {k: getattr(model, k) for k in type(model).model_fields}
        if self._ctx_param:
            kwargs[self._ctx_param] = ctx
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(**kwargs)
        else:  # a blocking function must not stall the loop (or the other parallel calls)
            result = await asyncio.to_thread(self.fn, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        return to_observation(result)

    def __repr__(self) -> str:
        return f"<tool {self.name}>"


def to_observation(result: Any) -> Observation:
    """A tool's return value as an Observation (strings as-is, other values as JSON)."""
    if isinstance(result, Observation):
        return result
    if result is None:
        return Observation(text="(no output)")
    if isinstance(result, str):
        return Observation(text=result)
    if isinstance(result, BaseModel):
        return Observation(text=result.model_dump_json(), data=result.model_dump())
    try:
        return Observation(text=json.dumps(result, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return Observation(text=str(result))


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(arguments)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unexpected argument"
        parts.append(f"{loc}: {msg}")
    return "invalid arguments: " + "; ".join(parts)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None,
         parallel_safe: bool = True) -> Any:
    """Turn a typed (sync or async) function into a Tool: ``@tool`` or ``@tool(name=..., parallel_safe=False)``.

    The JSON Schema comes from the type hints via pydantic; each argument's description from
    the docstring's ``Args:`` section. A parameter annotated ``ToolContext`` (or named ``ctx``)
    receives the run's context and is not part of the schema.
    """
    def wrap(f: Callable[..., Any], depth: int = 1) -> FunctionTool:
        caller = sys._getframe(depth).f_locals  # resolves string annotations of locally defined tools
        return FunctionTool(f, name=name, description=description, parallel_safe=parallel_safe,
                            localns=dict(caller))

    return wrap(fn, 2) if fn is not None else wrap


def validate_arguments(t: Tool, args: Any) -> dict[str, Any]:
    """Check arguments against a tool before calling it; raises ``ToolError`` with the reason.

    ``@tool`` tools use their pydantic model; other tools are checked against their JSON Schema.
    """
    if not isinstance(args, dict):
        raise ToolError(f"arguments must be a JSON object, got {type(args).__name__}")
    if isinstance(t, FunctionTool):
        t.validate(args)
        return args
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema comes with mcp
        missing = [k for k in t.parameters.get("required", []) if k not in args]
        if missing:
            raise ToolError(f"invalid arguments: missing required {', '.join(missing)}") from None
        return args
    validator = jsonschema.Draft202012Validator(t.parameters)
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path))
    if errors:
        parts = [f"{'.'.join(str(p) for p in e.path) or '(arguments)'}: {e.message}" for e in errors[:5]]
        raise ToolError("invalid arguments: " + "; ".join(parts))
    return args
