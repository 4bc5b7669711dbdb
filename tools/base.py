"""The tool contract: what a tool is, what it gets, and what it returns.

A tool returns an ``Observation`` written for the model; it never prints. Exceptions and bad
arguments are turned into error observations by the agent, so the model can correct itself.
``call_tool`` is the one way a tool is run: it applies the tool's deadline and keeps the
traceback of a tool that raised in the observation's ``data`` (the trajectory), not its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # a type only: tools need no sandbox code at import
    from agentkit.sandboxes.base import Sandbox


class Observation(BaseModel):
    """What a tool call produced: ``text`` goes to the model, ``data`` to the trajectory only."""

    text: str
    is_error: bool = False
    data: dict[str, Any] | None = None


class Source(BaseModel):
    """A numbered source of a run: the ``[citation:N]`` number, its URL and title."""

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
        """The number of ``url``, adding it (with ``title``) when it is new."""
        src = self._by_url.get(url)
        if src is None:
            src = Source(n=len(self._by_url) + 1, url=url, title=title)
            self._by_url[url] = src
        elif title and not src.title:
            src.title = title
        return src.n

    def get(self, n: int) -> Source | None:
        """The source numbered ``n``, if any."""
        return next((s for s in self._by_url.values() if s.n == n), None)

    def all(self) -> list[Source]:
        """Every source, by number."""
        return sorted(self._by_url.values(), key=lambda s: s.n)

    def __len__(self) -> int:
        return len(self._by_url)


@dataclass
class ToolContext:
    """Everything a tool may use during a run."""

    sandbox: Sandbox | None = None  # None for tools that need none
    settings: dict[str, Any] = field(default_factory=dict)  # the run's settings (no secrets)
    sources: SourceTable = field(default_factory=SourceTable)
    data: dict[str, Any] = field(default_factory=dict)  # per-run scratch space shared by tools
    run_id: str = ""


@runtime_checkable
class Tool(Protocol):
    """What the agent calls. Optional: ``call_timeout`` (seconds a call may take, ``None``: no
    limit); without it ``tool_timeout`` picks the deadline."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object
    parallel_safe: bool  # may run concurrently with other parallel-safe calls of the same turn

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation: ...


def tool_schema(tool: AnyTool) -> dict[str, Any]:
    """The OpenAI ``tools`` entry for a tool."""
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}


# --- @tool: a typed Python function becomes a Tool ------------------------------------------

import asyncio  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import functools  # noqa: E402
import typing  # noqa: E402
from typing import Callable, Generic, ParamSpec, TypeVar, overload  # noqa: E402

from pydantic import ConfigDict, ValidationError, create_model  # noqa: E402

from agentkit.errors import ToolError  # noqa: E402

_UNSET: Any = object()
DEFAULT_TOOL_TIMEOUT = 300.0  # s: a tool call still running after this becomes an error observation
TIMEOUT_MARGIN = 30.0  # s: room for a tool's own timeout (a shell command's) to fire first and report
MAX_TRACEBACK_CHARS = 20_000  # a traceback kept in the trajectory

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


P = ParamSpec("P")
R = TypeVar("R")


class FunctionTool(Generic[P, R]):
    """A Tool made from a typed function by ``@tool``; arguments are checked by ``args_model``.

    It keeps the function's signature for type checkers and editors (``inspect.signature`` too),
    and calling it like the function calls the function: ``add(1, 2)`` returns ``3`` for a plain
    function and the coroutine for an ``async def`` one. The agent runs it through ``invoke(args,
    ctx)``; ``tool(args_dict, ctx)`` with a ``ToolContext`` as the second argument is that same
    Tool-protocol call (an awaitable ``Observation``). The function itself is ``fn``."""

    call_timeout: float | None  # set only when given: otherwise ``DEFAULT_TOOL_TIMEOUT`` applies

    def __init__(self, fn: Callable[P, R], name: str | None = None, description: str | None = None,
                 parallel_safe: bool = True, localns: dict[str, Any] | None = None,
                 timeout: float | None | object = _UNSET) -> None:
        self.fn: Callable[P, R] = fn
        functools.update_wrapper(self, fn)  # __name__, __doc__, __wrapped__: the signature stays visible
        if timeout is not _UNSET:
            self.call_timeout = timeout  # type: ignore[assignment]
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

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function (or, given ``(args_dict, ToolContext)``, run the tool: see the class)."""
        if len(args) == 2 and not kwargs and isinstance(args[0], dict) and isinstance(args[1], ToolContext):
            return self.invoke(args[0], args[1])  # type: ignore[return-value]
        return self.fn(*args, **kwargs)

    async def invoke(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        """The Tool-protocol call: validate ``args``, run the function, its result as an Observation."""
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
    """A pydantic validation error as one line the model can act on, naming each bad argument."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(arguments)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unexpected argument"
        parts.append(f"{loc}: {msg}")
    return "invalid arguments: " + "; ".join(parts)


@overload
def tool(fn: Callable[P, R], /) -> FunctionTool[P, R]: ...


@overload
def tool(*, name: str | None = None, description: str | None = None, parallel_safe: bool = True,
         timeout: float | None = ...) -> Callable[[Callable[P, R]], FunctionTool[P, R]]: ...


def tool(fn: Callable[P, R] | None = None, *, name: str | None = None, description: str | None = None,
         parallel_safe: bool = True, timeout: float | None | object = _UNSET
         ) -> FunctionTool[P, R] | Callable[[Callable[P, R]], FunctionTool[P, R]]:
    """Turn a typed (sync or async) function into a Tool: ``@tool`` or ``@tool(name=..., parallel_safe=False)``.

    The JSON Schema comes from the type hints via pydantic; each argument's description from
    the docstring's ``Args:`` section. A parameter annotated ``ToolContext`` (or named ``ctx``)
    receives the run's context and is not part of the schema. ``timeout``: seconds a call may
    take (default ``DEFAULT_TOOL_TIMEOUT``; ``None``: no limit).

    The result is a ``FunctionTool`` that type checkers see with the function's own signature;
    calling it directly calls the function (``add(1, 2) == 3``; an ``async def`` gives its
    coroutine), so a tool stays testable as plain code.
    """
    def wrap(f: Callable[P, R], depth: int = 1) -> FunctionTool[P, R]:
        caller = sys._getframe(depth).f_locals  # resolves string annotations of locally defined tools
        return FunctionTool(f, name=name, description=description, parallel_safe=parallel_safe,
                            localns=dict(caller), timeout=timeout)

    return wrap(fn, 2) if fn is not None else wrap


AnyTool = typing.Union[Tool, FunctionTool[..., Any]]  # what ``Agent(tools=...)`` takes


def validate_arguments(t: AnyTool, args: Any) -> dict[str, Any]:
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


# --- running a tool: deadline, and exceptions as observations ---------------------------------
def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def tool_timeout(t: Any, args: dict[str, Any]) -> float | None:
    """Seconds one call of ``t`` may take (``None``: no limit).

    A ``call_timeout`` attribute wins. Otherwise a tool with a timeout of its own (a ``timeout``
    argument its schema offers, capped by ``max_timeout``; else a ``deadline``, ``default_timeout``
    or ``timeout`` attribute) gets that plus ``TIMEOUT_MARGIN``, so the generic deadline never cuts
    a shell command before the sandbox stops it and keeps its output; all others get the default.
    """
    explicit = getattr(t, "call_timeout", _UNSET)
    if explicit is not _UNSET:
        return _number(explicit)
    own = None
    if "timeout" in ((getattr(t, "parameters", None) or {}).get("properties") or {}):
        own = _number(args.get("timeout"))
        cap = _number(getattr(t, "max_timeout", None))
        if own is not None and cap is not None:
            own = min(own, cap)
    for attr in ("deadline", "default_timeout", "timeout"):
        if own is None:
            own = _number(getattr(t, attr, None))
    return DEFAULT_TOOL_TIMEOUT if own is None else max(DEFAULT_TOOL_TIMEOUT, own + TIMEOUT_MARGIN)


async def call_tool(t: AnyTool, args: dict[str, Any], ctx: ToolContext) -> Observation:
    """Run one tool call: never raises (but for cancellation), never outlives its deadline.

    A ``ToolError`` becomes its one-line message; any other exception the short error for the
    model plus the traceback in ``data`` for the trajectory (the model cannot use it, a person can).
    A blocking ``@tool`` function runs in a thread, which cannot be stopped: it is abandoned.
    """
    limit = tool_timeout(t, args)
    try:
        async with asyncio.timeout(limit) as deadline:
            run = t.invoke(args, ctx) if isinstance(t, FunctionTool) else t(args, ctx)
            return to_observation(await run)
    except ToolError as exc:
        return Observation(text=f"Error: {exc}", is_error=True)
    except Exception as exc:  # a tool bug must not end the run: the model is told and can adapt
        if isinstance(exc, TimeoutError) and deadline.expired():
            return Observation(text=f"Error: the tool {t.name} did not finish within {limit:g} s and was stopped.",
                               is_error=True, data={"timeout_s": limit})
        tb = traceback.format_exc()
        if len(tb) > MAX_TRACEBACK_CHARS:  # keep the end: the raising frame and the message
            tb = "[traceback cut]\n" + tb[-MAX_TRACEBACK_CHARS:]
        return Observation(text=f"Error: tool {t.name} failed: {type(exc).__name__}: {exc}", is_error=True,
                           data={"traceback": tb})
