"""The tool calls of one turn: each checked against its tool's schema, run under the run's
deadline (concurrently when all are parallel-safe), and recorded in call order. Whatever goes
wrong (an unknown tool, bad JSON, a schema mismatch, a raising or hung tool) becomes an error
observation the model can read and correct; a good ``submit`` call ends the run."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator, Callable, Iterable

from agentkit import events as ev
from agentkit.agent.budget import Budget
from agentkit.agent.record import RunRecord
from agentkit.errors import ConfigError, ToolError
from agentkit.messages import ToolCall
from agentkit.tools.base import AnyTool, Observation, ToolContext, call_tool, validate_arguments

SUBMIT = "submit"
Checked = tuple[AnyTool | None, dict[str, Any] | None, Observation | None]  # the tool, its arguments, or the error


def check_tools(tools: Iterable[AnyTool]) -> dict[str, AnyTool]:
    """The tools by name; a plain function or a repeated name fails here, naming the fix."""
    by_name: dict[str, AnyTool] = {}
    for t in tools:
        if not (hasattr(t, "name") and hasattr(t, "parameters") and callable(t)):
            what = getattr(t, "__name__", type(t).__name__)
            hint = (f"decorate it with @tool (from agentkit import tool) so {what}'s type hints become its "
                    "schema" if callable(t) else "a tool needs name, description, parameters and an async "
                    "__call__(args, ctx)")
            raise ConfigError(f"{what!r} is not a tool: {hint}")
        if t.name in by_name:
            raise ConfigError(f"two tools are named {t.name!r}; the model calls tools by name, so give one "
                              "another name (@tool(name=...))")
        by_name[t.name] = t
    return by_name


async def run_calls(rec: RunRecord, tools: dict[str, AnyTool], calls: list[ToolCall], budget: Budget,
                    cut: Callable[[str], str]) -> AsyncIterator[ev.Event]:
    """Check and run one turn's calls; their results go to ``rec`` (``cut``: the text the model gets)."""
    if not calls:
        return
    checked = [check_call(tools, c) for c in calls]
    rec.problems = [bad.text for _, _, bad in checked if bad is not None]
    for c in calls:
        yield ev.ToolCallStarted(step=rec.steps, call_id=c.id, name=c.name, arguments=c.arguments)
    results = await run_checked(checked, rec.tool_ctx, budget)
    submitted = None
    for i, (call, (_, args, bad)) in enumerate(zip(calls, checked, strict=True)):
        obs, took = (bad, 0.0) if bad is not None else results[i]
        msg = rec.add_result(call, obs, took, cut(obs.text))
        yield ev.ToolCallFinished(step=rec.steps, call_id=call.id, name=call.name, text=msg.text,
                                  is_error=obs.is_error, duration_s=took)
        if call.name == SUBMIT and bad is None and not obs.is_error:
            submitted = str((args or {}).get("summary") or (args or {}).get("answer") or obs.text)
    rec.note_sources()
    if submitted is not None:
        rec.end = ("done", submitted, None)
    else:
        rec.check_repeats(calls, budget.limits.max_repeats)


def check_call(tools: dict[str, AnyTool], call: ToolCall) -> Checked:
    """The tool and parsed arguments, or an error observation that tells the model what is wrong."""
    tool = tools.get(call.name)
    if tool is None and call.name == SUBMIT:
        try:
            return None, dict(call.parsed_arguments()), None
        except (ValueError, TypeError):
            pass
    if tool is None:
        names = ", ".join(sorted(tools)) or "(none)"
        return None, None, Observation(is_error=True, text=(
            f"Error: there is no tool named {call.name!r}. Valid tools: {names}. "
            "Call one of them by its exact name."))
    try:
        args = call.parsed_arguments()
        validate_arguments(tool, args)
    except json.JSONDecodeError as exc:
        problem = (f"the arguments of {call.name} are not valid JSON ({exc.msg} at position {exc.pos}). "
                   "Send one JSON object that matches this schema")
    except ToolError as exc:
        problem = f"{exc} (tool {call.name}). The schema is"
    else:
        return tool, args, None
    # the schema as text only here: building it for every call cost a JSON dump per step
    return tool, None, Observation(is_error=True, text=(
        f"Error: {problem}: {json.dumps(tool.parameters, ensure_ascii=False)}"))


async def run_checked(checked: list[Checked], ctx: ToolContext, budget: Budget) -> dict[int, tuple[Observation, float]]:
    """Run one turn's good calls, concurrently when all are parallel-safe; by index in the turn."""
    jobs = [(i, t, a or {}) for i, (t, a, bad) in enumerate(checked) if bad is None]
    if len(jobs) > 1 and all(getattr(t, "parallel_safe", False) for _, t, _ in jobs):
        done = await asyncio.gather(*(invoke(t, a, ctx, budget) for _, t, a in jobs))
        return {i: r for (i, _, _), r in zip(jobs, done, strict=True)}
    return {i: await invoke(t, a, ctx, budget) for i, t, a in jobs}


async def invoke(tool: AnyTool | None, args: dict[str, Any], ctx: ToolContext, budget: Budget) -> tuple[Observation, float]:
    """Run a checked call; its observation and how long it took."""
    start = time.monotonic()
    if tool is None:  # an unregistered ``submit``: nothing to run
        return Observation(text="submitted"), 0.0
    left = budget.time_left()
    try:  # a hung tool cannot outlive the run's wall-time budget
        obs = await asyncio.wait_for(call_tool(tool, args, ctx), max(left, 0.001) if left else None)
    except asyncio.TimeoutError:
        obs = Observation(text=f"Error: tool {tool.name} was stopped: the run's wall-time limit "
                               f"({budget.limits.max_wall_s:g} s) was reached", is_error=True)
    except ToolError as exc:
        obs = Observation(text=f"Error: {exc}", is_error=True)
    except Exception as exc:  # a tool bug must not end the run: the model is told and can adapt
        obs = Observation(text=f"Error: tool {tool.name} failed: {type(exc).__name__}: {exc}", is_error=True)
    return obs, time.monotonic() - start
