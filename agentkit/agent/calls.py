"""Acting on one model turn. Its tool calls are each checked against the tool's schema, run
under the run's deadline (concurrently when all are parallel-safe) and recorded in call order;
a turn without calls is the answer, unless it was cut off, empty or unreadable. Whatever goes
wrong (an unknown tool, bad JSON, a schema mismatch, a raising or hung tool, a malformed reply)
becomes an observation the model can read and correct; a good ``submit`` call ends the run, and
``max_format_errors`` malformed turns in a row end it with an error."""

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


async def handle_turn(rec: RunRecord, tools: dict[str, AnyTool], budget: Budget, cut_text: Callable[[str], str],
                      require_submit: bool) -> AsyncIterator[ev.Event]:
    """Act on the turn just received (``rec.completion``): run its tools, or take it as the answer."""
    assert rec.completion is not None
    msg, warnings = rec.completion.message, list(rec.completion.warnings)
    cut = rec.completion.finish_reason == "length"
    problems: list[str] = []
    if msg.tool_calls:
        if cut:
            warnings.append("your reply reached the output token limit and was cut off; keep calls shorter")
        async for e in run_calls(rec, tools, msg.tool_calls, budget, cut_text):
            yield e
        problems = rec.problems
    elif cut:  # a cut-off text is not an answer
        problems = ["reply cut off at the output token limit"]
        rec.say("Your last reply reached the output token limit and was cut off. Continue more "
                "concisely: call a tool, or give your complete final answer.")
    elif warnings:
        problems = ["the reply could not be read as intended"]
    elif not msg.text.strip():
        problems = ["empty reply"]
        rec.say("Your last reply was empty. Call one of the tools, or give your final answer.")
    elif require_submit and not rec.reminded:
        rec.reminded = True
        rec.say(f"To finish, call the `{SUBMIT}` tool with your final answer as `summary`. "
                "If you are not done, continue with the tools.")
    else:
        rec.end = ("done", msg.text, None)
    if warnings:
        rec.say("Note from the agent runtime about your last reply:\n- " + "\n- ".join(warnings))
    rec.format_errors = rec.format_errors + 1 if problems else 0
    if rec.format_errors >= budget.limits.max_format_errors and rec.end is None:
        rec.end = ("error", None, f"{rec.format_errors} malformed model turns in a row; last: {problems[0][:300]}")
    for e in rec.flush():
        yield e


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
    # a hung tool cannot outlive the run's wall-time budget (a timeout scope, not wait_for: on
    # Python 3.11 that made a task per call, a measurable share of a step's CPU)
    timer = asyncio.timeout(max(left, 0.001) if left else None)
    try:
        async with timer:
            obs = await call_tool(tool, args, ctx)
    except TimeoutError as exc:
        if not timer.expired():  # the tool's own timeout, not the budget's
            obs = Observation(text=f"Error: tool {tool.name} failed: {type(exc).__name__}: {exc}", is_error=True)
        else:
            obs = Observation(text=f"Error: tool {tool.name} was stopped: the run's wall-time limit "
                                   f"({budget.limits.max_wall_s:g} s) was reached", is_error=True)
    except ToolError as exc:
        obs = Observation(text=f"Error: {exc}", is_error=True)
    except Exception as exc:  # a tool bug must not end the run: the model is told and can adapt
        obs = Observation(text=f"Error: tool {tool.name} failed: {type(exc).__name__}: {exc}", is_error=True)
    return obs, time.monotonic() - start
