"""The agent loop: ask the model, run the tools it calls, feed back observations, until done.

One run is a sequence of steps; each step is one model call plus the tool calls of its turn.
Everything durable goes to the trajectory as it happens (so a killed run can be resumed);
everything else is a typed event from ``agent.iter(task)``. Bad model output never crashes a
run: it becomes an error observation the model can read and correct.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Literal

from pydantic import BaseModel, Field

import agentkit
from agentkit import events as ev
from agentkit.context import ContextManager, ContextPolicy
from agentkit.errors import AgentkitError, ConfigError, ContextWindowExceeded, ModelError, ToolError
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, Usage, UserMessage
from agentkit.models.base import Completion, Model, ModelEvent, ModelSettings
from agentkit.tools.base import Observation, SourceTable, Tool, ToolContext, call_tool, tool_schema, \
    validate_arguments
from agentkit.redact import model_secrets
from agentkit.trajectory import Trajectory, TrajectoryWriter, scrub

DEFAULT_SYSTEM = "You are a helpful agent. Use the tools to complete the task, then give the final answer."
SUBMIT = "submit"
Status = Literal["done", "limit", "error", "cancelled"]
_CORE_KEYS = {"type", "v", "t", "id", "agentkit_version", "created", "task", "tools"}
INTERRUPTED = ("Error: the previous call was interrupted (the run stopped before it returned); its effects "
               "are unknown. Check the current state before you repeat it.")


class Limits(BaseModel):
    """Budgets for one run (totals across resumes, except wall time which is per session)."""

    max_steps: int | None = 50
    max_cost_usd: float | None = None
    max_tokens: int | None = None  # prompt + completion tokens, summed over calls
    max_wall_s: float | None = None
    max_format_errors: int = 3  # consecutive malformed turns before the run ends with "error"
    max_repeats: int = 3  # identical action+observation this many times: warn; once more: end


class RunResult(BaseModel):
    status: Status
    answer: str | None = None
    steps: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = 0.0
    trajectory_path: str | None = None
    sources: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    error_type: str | None = None  # the agentkit error that ended the run, e.g. "AuthError"
    error_status: int | None = None  # its HTTP status, for model errors


@dataclass
class _State:
    """Everything one run (or one resumed session) carries between steps."""

    context: list[Message]
    ctx: ToolContext
    writer: TrajectoryWriter | None
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.monotonic)
    format_errors: int = 0
    repeat_key: Any = None
    repeats: int = 0
    reminded: bool = False
    pending: list[ev.Event] = field(default_factory=list)
    completion: Completion | None = None
    end: tuple[Status, str | None, str | None] | None = None  # status, answer, error
    n_sources: int = 0
    problems: list[str] = field(default_factory=list)  # format errors found in the current turn
    shrink: int | None = None  # prompt target after the provider said the prompt is too long
    exc: AgentkitError | None = None  # the typed error that ended the run, if one did


class Agent:
    """Runs a model with tools until it answers, a limit is reached, or the run is cancelled.

    ``run(task)``/``run_sync(task)`` return a ``RunResult``; ``iter(task)`` yields typed events
    (``agentkit.events``); ``resume(path)`` continues a trajectory from its last complete step.
    ``trajectory`` names the JSONL log of a new run (overwritten); ``run_info`` adds fields to
    its run record and to ``ToolContext.settings``; ``window``/``prices`` (USD per million
    input/output tokens) override the catalog.
    """

    def __init__(self, model: Model, tools: Iterable[Tool] = (), sandbox: Any = None,
                 system: str | None = DEFAULT_SYSTEM,
                 thinking: bool = False, limits: Limits | None = None, settings: ModelSettings | None = None,
                 trajectory: str | Path | None = None, require_submit: bool = False, stream: bool = False,
                 context: ContextPolicy | None = None, run_info: dict[str, Any] | None = None,
                 fsync: bool = False, window: int | None = None,
                 prices: tuple[float, float] | None = None) -> None:
        self.model, self.sandbox, self.system, self.thinking = model, sandbox, system, thinking
        self.tools: dict[str, Tool] = {t.name: t for t in tools}
        self.limits = limits or Limits()
        self.settings = settings or ModelSettings()
        self.trajectory = Path(trajectory) if trajectory else None
        self.require_submit, self.stream, self.fsync = require_submit, stream, fsync
        self.run_info = dict(run_info or {})
        info = _catalog(model.name)
        self.window = window or _num(info, "context_window", "context", "window", "max_context")
        self.max_output = _num(info, "max_output", "max_output_tokens", "max_completion_tokens")
        self.prices = prices or _prices(info)
        self.context = ContextManager(context or ContextPolicy(), model.name, self.window,
                                      reserve=self.settings.max_tokens or self.max_output)
        self.result: RunResult | None = None
        self._cancel = False

    # --- public API ----------------------------------------------------------------------
    def tool_schemas(self) -> list[dict[str, Any]]:
        return [tool_schema(t) for t in self.tools.values()]

    def iter(self, task: str) -> AsyncIterator[ev.Event]:
        return self._drive(task=task)

    def iter_resume(self, path: str | Path) -> AsyncIterator[ev.Event]:
        return self._drive(resume=Path(path))

    async def run(self, task: str) -> RunResult:
        async for _ in self.iter(task):
            pass
        assert self.result is not None
        return self.result

    async def resume(self, path: str | Path) -> RunResult:
        async for _ in self.iter_resume(path):
            pass
        assert self.result is not None
        return self.result

    def run_sync(self, task: str) -> RunResult:
        return self._sync(self.run(task))

    def resume_sync(self, path: str | Path) -> RunResult:
        return self._sync(self.resume(path))

    def cancel(self) -> None:
        """Ask the run to stop before its next step (status ``cancelled``)."""
        self._cancel = True

    def _sync(self, coro: Any) -> RunResult:
        try:
            return asyncio.run(coro)
        except KeyboardInterrupt:  # asyncio.run cancelled the run, which logged its end
            if self.result is None:
                raise
            return self.result

    # --- the loop ------------------------------------------------------------------------
    async def _drive(self, task: str | None = None, resume: Path | None = None) -> AsyncIterator[ev.Event]:
        st = self._resume_state(resume) if resume else self._new_state(task or "")
        self._cancel, self.result = False, None
        try:
            if resume and st.end is None:
                for e in self._interrupt_open_calls(st):
                    yield e
            while st.end is None:
                if self._cancel:
                    st.end = ("cancelled", None, "the run was cancelled")
                    break
                limit = self._limit_hit(st)
                if limit is None:
                    messages = await self._compact(st, st.shrink)
                    for e in self._flush(st):
                        yield e
                    prompt_tokens = self.context.last_tokens  # counted by the compaction check
                    max_tokens, limit = self._cap(st, prompt_tokens)
                if limit is not None:
                    self._log_event(st, "limit", limit=limit.limit, value=limit.value, maximum=limit.maximum)
                    yield limit
                    st.end = ("limit", None, f"{limit.limit} limit reached ({limit.value:g} of {limit.maximum:g})")
                    break
                yield ev.ModelCallStarted(step=st.steps + 1, prompt_tokens=prompt_tokens, max_tokens=max_tokens,
                                          messages=len(messages))
                try:
                    async for e in self._call_model(st, messages, max_tokens):
                        yield e
                except ContextWindowExceeded as exc:  # our count was short: compact harder, once
                    if st.shrink is not None:
                        raise
                    st.shrink = prompt_tokens // 2
                    self._log_event(st, "error", error=str(exc), recovery="compaction")
                    continue
                st.shrink = None
                async for e in self._handle_turn(st):
                    yield e
        except (asyncio.CancelledError, GeneratorExit):
            self._close_open_calls(st)
            self._finish(st, ("cancelled", None, "the run was cancelled"))
            raise
        except AgentkitError as exc:  # model failures (retries exhausted, auth, context) end the run
            st.end, st.exc = ("error", None, str(exc)), exc
        except Exception as exc:  # a bug: still leave a complete trajectory, then let it surface
            self._finish(st, ("error", None, f"internal error: {type(exc).__name__}: {exc}"))
            raise
        for e in self._flush(st):
            yield e
        yield self._finish(st, st.end or ("error", None, "ended without a status"))

    async def _call_model(self, st: _State, messages: list[Message], max_tokens: int | None) -> AsyncIterator[ev.Event]:
        update: dict[str, Any] = {"max_tokens": max_tokens} if max_tokens else {}
        if self.settings.thinking is None:
            update["thinking"] = self.thinking
        settings = self.settings.model_copy(update=update) if update else self.settings
        tools, step, st.completion = self.tool_schemas() or None, st.steps + 1, None
        if self.stream:
            async for d in self.model.stream(messages, tools, settings, on_event=lambda m: self._model_event(st, m)):
                for e in self._flush(st):  # a retry first: it may void the deltas shown before it
                    yield e
                if d.reasoning:
                    yield ev.ReasoningDelta(step=step, text=d.reasoning)
                if d.content:
                    yield ev.ContentDelta(step=step, text=d.content)
                st.completion = d.completion or st.completion
            if st.completion is None:
                raise ModelError("the model's stream ended without a final message; retry the run")
        else:
            st.completion = await self.model.complete(messages, tools, settings,
                                                      on_event=lambda m: self._model_event(st, m))
        c = st.completion
        st.steps, st.usage = step, st.usage + c.usage
        st.context.append(c.message)
        if st.writer:
            st.writer.message(step, c.message, usage=c.usage, latency_s=round(c.latency_s, 4),
                              cost_usd=c.usage.cost_usd, finish_reason=c.finish_reason, model=c.model,
                              provider=c.provider, warnings=c.warnings or None)
        for e in self._flush(st):
            yield e
        yield ev.ModelCallFinished(step=step, usage=c.usage, latency_s=c.latency_s, finish_reason=c.finish_reason,
                                   content=c.message.text or None, reasoning=c.message.reasoning,
                                   tool_calls=len(c.message.tool_calls))

    async def _handle_turn(self, st: _State) -> AsyncIterator[ev.Event]:
        """Act on the turn just received: run its tools, or take it as the answer."""
        assert st.completion is not None
        msg, warnings = st.completion.message, list(st.completion.warnings)
        cut = st.completion.finish_reason == "length"
        problems: list[str] = []
        if msg.tool_calls:
            if cut:
                warnings.append("your reply reached the output token limit and was cut off; keep calls shorter")
            async for e in self._run_tools(st, msg.tool_calls):
                yield e
            problems = st.problems
        elif cut:  # a cut-off text is not an answer
            problems = ["reply cut off at the output token limit"]
            self._say(st, "Your last reply reached the output token limit and was cut off. Continue more "
                          "concisely: call a tool, or give your complete final answer.")
        elif warnings:
            problems = ["the reply could not be read as intended"]
        elif not msg.text.strip():
            problems = ["empty reply"]
            self._say(st, "Your last reply was empty. Call one of the tools, or give your final answer.")
        elif self.require_submit and not st.reminded:
            st.reminded = True
            self._say(st, f"To finish, call the `{SUBMIT}` tool with your final answer as `summary`. "
                          "If you are not done, continue with the tools.")
        else:
            st.end = ("done", msg.text, None)
        if warnings:
            self._say(st, "Note from the agent runtime about your last reply:\n- " + "\n- ".join(warnings))
        st.format_errors = st.format_errors + 1 if problems else 0
        if st.format_errors >= self.limits.max_format_errors and st.end is None:
            st.end = ("error", None, f"{st.format_errors} malformed model turns in a row; last: {problems[0][:300]}")
        for e in self._flush(st):
            yield e

    async def _run_tools(self, st: _State, calls: list[ToolCall]) -> AsyncIterator[ev.Event]:
        """Check and run one turn's calls (concurrently when all are parallel-safe); results in call order."""
        if not calls:
            return
        checked = [self._check(c) for c in calls]
        st.problems = [bad.text for _, _, bad in checked if bad is not None]
        for c in calls:
            yield ev.ToolCallStarted(step=st.steps, call_id=c.id, name=c.name, arguments=c.arguments)
        jobs = [(i, t, a) for i, (t, a, bad) in enumerate(checked) if bad is None]
        results: dict[int, tuple[Observation, float]] = {}
        if len(jobs) > 1 and all(getattr(t, "parallel_safe", False) for _, t, _ in jobs):
            done = await asyncio.gather(*(self._invoke(t, a or {}, st) for _, t, a in jobs))
            results = {i: r for (i, _, _), r in zip(jobs, done, strict=True)}
        else:
            for i, t, a in jobs:
                results[i] = await self._invoke(t, a or {}, st)
        submitted = None
        for i, (call, (_, args, bad)) in enumerate(zip(calls, checked, strict=True)):
            obs, took = (bad, 0.0) if bad is not None else results[i]
            self._record_result(st, call, obs, took)
            yield ev.ToolCallFinished(step=st.steps, call_id=call.id, name=call.name, text=st.context[-1].text,
                                      is_error=obs.is_error, duration_s=took)
            if call.name == SUBMIT and bad is None and not obs.is_error:
                submitted = str((args or {}).get("summary") or (args or {}).get("answer") or obs.text)
        if len(st.ctx.sources) != st.n_sources:
            st.n_sources = len(st.ctx.sources)
            self._log_event(st, "sources", sources=[s.model_dump() for s in st.ctx.sources.all()])
        if submitted is not None:
            st.end = ("done", submitted, None)
        else:
            self._check_repeats(st, calls)

    def _check(self, call: ToolCall) -> tuple[Tool | None, dict[str, Any] | None, Observation | None]:
        """The tool and parsed arguments, or an error observation that tells the model what is wrong."""
        tool = self.tools.get(call.name)
        if tool is None and call.name == SUBMIT:
            try:
                return None, dict(call.parsed_arguments()), None
            except (ValueError, TypeError):
                pass
        if tool is None:
            names = ", ".join(sorted(self.tools)) or "(none)"
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

    async def _invoke(self, tool: Tool | None, args: dict[str, Any], st: _State) -> tuple[Observation, float]:
        start = time.monotonic()
        if tool is None:  # an unregistered ``submit``: nothing to run
            return Observation(text="submitted"), 0.0
        left = None if self.limits.max_wall_s is None else self.limits.max_wall_s - (start - st.started)
        try:  # a hung tool cannot outlive the run's wall-time budget
            obs = await asyncio.wait_for(call_tool(tool, args, st.ctx), max(left, 0.001) if left else None)
        except asyncio.TimeoutError:
            obs = Observation(text=f"Error: tool {tool.name} was stopped: the run's wall-time limit "
                                   f"({self.limits.max_wall_s:g} s) was reached", is_error=True)
        except ToolError as exc:
            obs = Observation(text=f"Error: {exc}", is_error=True)
        except Exception as exc:  # a tool bug must not end the run: the model is told and can adapt
            obs = Observation(text=f"Error: tool {tool.name} failed: {type(exc).__name__}: {exc}", is_error=True)
        return obs, time.monotonic() - start

    def _record_result(self, st: _State, call: ToolCall, obs: Observation, took: float) -> None:
        content = self.context.cut_observation(obs.text)
        msg = ToolMessage(tool_call_id=call.id, name=call.name, content=content)
        st.context.append(msg)
        if st.writer:
            st.writer.tool_result(st.steps, msg, obs.model_dump(), took)

    def _check_repeats(self, st: _State, calls: list[ToolCall]) -> None:
        key = [(c.name, c.arguments) for c in calls] + [m.text for m in st.context[-len(calls):]]
        st.repeats = st.repeats + 1 if key == st.repeat_key else 1
        st.repeat_key = key
        n = self.limits.max_repeats
        if n and st.repeats == n:
            self._say(st, f"You have made the same call {n} times in a row and got the same result each time. "
                          "Try something different, or give your final answer.", warn=True)
        elif n and st.repeats > n:
            st.end = ("error", None, f"the model repeated the same action {st.repeats} times with the same result")

    # --- limits, context, bookkeeping ----------------------------------------------------
    def _limit_hit(self, st: _State) -> ev.LimitReached | None:
        lim, cost = self.limits, st.usage.cost_usd
        checks = [("steps", st.steps, lim.max_steps), ("tokens", st.usage.total, lim.max_tokens),
                  ("cost", cost or 0.0, lim.max_cost_usd), ("wall_time", time.monotonic() - st.started, lim.max_wall_s)]
        for name, value, maximum in checks:
            if maximum is not None and value >= maximum:
                return ev.LimitReached(step=st.steps, limit=name, value=value, maximum=maximum)
        return None

    def _cap(self, st: _State, prompt_tokens: int) -> tuple[int | None, ev.LimitReached | None]:
        """The call's max_tokens, so it cannot overrun the token or cost budget (or the window)."""
        lim, caps = self.limits, list[tuple[str, int, float, float]]()
        if lim.max_tokens is not None:
            caps.append(("tokens", lim.max_tokens - st.usage.total - prompt_tokens, st.usage.total, lim.max_tokens))
        if lim.max_cost_usd is not None and self.prices and st.usage.cost_usd is not None:
            p_in, p_out = self.prices
            left = lim.max_cost_usd - st.usage.cost_usd - prompt_tokens * p_in / 1e6
            room = int(left * 1e6 / p_out) if p_out > 0 else 1 << 30
            caps.append(("cost", room, st.usage.cost_usd, lim.max_cost_usd))
        for name, room, value, maximum in caps:
            if room < 1:
                return None, ev.LimitReached(step=st.steps, limit=name, value=value, maximum=maximum)
        if not caps and not self.settings.max_tokens:
            return None, None  # nothing to enforce: the provider's default applies
        bounds = [room for _, room, _, _ in caps] + [b for b in (self.settings.max_tokens, self.max_output) if b]
        if self.window:  # prompt + max_tokens past the window is refused by most servers
            bounds.append(max(1, self.window - prompt_tokens))
        return int(min(bounds)), None

    async def _compact(self, st: _State, target: int | None = None) -> list[Message]:
        async def summarize(request: list[Message]) -> tuple[AssistantMessage, dict[str, Any] | None]:
            # the run's own tools: the request repeats the last prompt, so it is a cache hit
            c = await self.model.complete(request, self.tool_schemas() or None, self.settings,
                                          on_event=lambda m: self._model_event(st, m))
            st.usage = st.usage + c.usage
            return c.message, c.usage.model_dump()

        new, done = await self.context.compact(st.context, self.tool_schemas(), summarize, target=target)
        for comp in done:
            self._log_event(st, "compaction", **comp.model_dump(exclude_none=True))
            st.pending.append(ev.CompactionDone(step=st.steps, strategy=comp.strategy, start=comp.start, end=comp.end,
                                                tokens_before=comp.tokens_before, tokens_after=comp.tokens_after))
        st.context = new
        return list(new)

    def _say(self, st: _State, text: str, warn: bool = False) -> None:
        """Add a runtime note to the conversation (logged as a user message from the agent)."""
        msg = UserMessage(content=text)
        st.context.append(msg)
        if st.writer:
            st.writer.message(st.steps, msg, origin="agent")
        st.pending.append(ev.Warning(step=st.steps, text=text))
        if warn:
            self._log_event(st, "warning", text=text)

    def _model_event(self, st: _State, m: ModelEvent) -> None:
        self._log_event(st, m.kind, **m.model_dump(exclude={"kind"}))
        if m.kind == "retry":
            st.pending.append(ev.Retry(step=st.steps, model=m.model, attempt=m.attempt, error=m.error,
                                       status=m.status, wait_s=m.wait_s, discarded=m.discarded))
        else:
            st.pending.append(ev.FallbackUsed(step=st.steps, model=m.model, to_model=m.to_model, error=m.error,
                                              discarded=m.discarded))

    def _log_event(self, st: _State, kind: str, **fields: Any) -> None:
        if st.writer:
            st.writer.event(kind, step=st.steps, **fields)

    @staticmethod
    def _flush(st: _State) -> list[ev.Event]:
        out, st.pending = st.pending, []
        return out

    def _finish(self, st: _State, end: tuple[Status, str | None, str | None]) -> ev.RunEnded:
        status, answer, error = end
        sources = [s.model_dump() for s in st.ctx.sources.all()]
        if st.writer and not st.writer.closed:
            st.writer.end(status, answer, st.usage, st.usage.cost_usd, steps=st.steps, error=error, sources=sources)
            st.writer.close()
        self.result = RunResult(status=status, answer=answer, steps=st.steps, usage=st.usage,
                                cost_usd=st.usage.cost_usd, sources=sources, error=error,
                                error_type=type(st.exc).__name__ if st.exc else None,
                                error_status=getattr(st.exc, "status", None),
                                trajectory_path=str(st.writer.path) if st.writer else None)
        return ev.RunEnded(step=st.steps, status=status, answer=answer, error=error, usage=st.usage,
                           cost_usd=st.usage.cost_usd)

    # --- starting and resuming -----------------------------------------------------------
    def _tool_context(self, run_id: str, sources: list[dict[str, Any]] | None = None) -> ToolContext:
        from agentkit.tools.base import Source

        table = SourceTable([Source(**s) for s in sources or []])
        settings = {**self.settings.model_dump(exclude_none=True), **self.run_info}
        return ToolContext(sandbox=self.sandbox, settings=scrub(settings), sources=table, run_id=run_id)

    def _writer(self, path: Path, append: bool) -> TrajectoryWriter:
        # every key of a fallback chain, not only the first model's
        return TrajectoryWriter(path, fsync=self.fsync, secrets=model_secrets(self.model), append=append)

    def _new_state(self, task: str) -> _State:
        run_id = uuid.uuid4().hex[:16]
        context: list[Message] = [SystemMessage(content=self.system)] if self.system else []
        context.append(UserMessage(content=task))
        st = _State(context=context, ctx=self._tool_context(run_id),
                    writer=self._writer(self.trajectory, append=False) if self.trajectory else None)
        if st.writer:
            header: dict[str, Any] = {
                "model": self.model.name, "provider": getattr(self.model, "provider", None),
                "settings": self.settings.model_dump(exclude_none=True), "thinking": self.thinking,
                "sandbox": _describe(self.sandbox), "preset": None, "limits": self.limits.model_dump(),
                "require_submit": self.require_submit, "system": self.system}
            header.update({k: v for k, v in self.run_info.items() if k not in _CORE_KEYS})  # caller knows better
            st.writer.run(id=run_id, agentkit_version=agentkit.__version__, created=time.time(), task=task,
                          tools=self.tool_schemas(), **header)
            for m in context:
                st.writer.message(0, m)
        return st

    def _resume_state(self, path: Path) -> _State:
        if not path.exists():
            raise ConfigError(f"trajectory {path} not found; pass the .jsonl file a run wrote")
        traj = Trajectory.load(path, strict=True)  # a damaged file is a one-line error, not a traceback
        try:
            ctx = self._tool_context(str(traj.run.get("id", "")), traj.sources)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}: the sources record is damaged: {' '.join(str(e).split())[:160]}") from None
        st = _State(context=traj.next_context(), ctx=ctx, writer=self._writer(path, append=True),
                    steps=traj.steps, usage=traj.usage)
        st.n_sources = len(st.ctx.sources)
        if hasattr(self.model, "skip"):
            self.model.skip(traj.model_turns)  # a replay continues after the turns already played
        if traj.status == "done":
            st.end = ("done", traj.answer, None)
        self._log_event(st, "resume", previous_status=traj.status, steps=traj.steps)
        return st

    def _open_calls(self, st: _State) -> list[ToolCall]:
        """Calls of the last assistant turn that have no result yet (the run was killed mid-turn)."""
        for i in range(len(st.context) - 1, -1, -1):
            m = st.context[i]
            if isinstance(m, AssistantMessage):
                answered = {t.tool_call_id for t in st.context[i + 1:] if isinstance(t, ToolMessage)}
                return [c for c in m.tool_calls if c.id not in answered]
        return []

    def _interrupt_open_calls(self, st: _State) -> list[ev.Event]:
        """Calls the run was killed in the middle of: never run again (a command that appends to a
        file would append twice); the model is told their effects are unknown, so it can check."""
        out: list[ev.Event] = []
        for call in self._open_calls(st):
            self._record_result(st, call, Observation(text=INTERRUPTED, is_error=True), 0.0)
            out.append(ev.ToolCallFinished(step=st.steps, call_id=call.id, name=call.name, text=INTERRUPTED,
                                           is_error=True, duration_s=0.0))
        return out

    def _close_open_calls(self, st: _State) -> None:
        for call in self._open_calls(st):
            self._record_result(st, call, Observation(text="Error: cancelled before it finished", is_error=True), 0.0)


def _catalog(name: str) -> Any:
    try:
        from agentkit.models import catalog

        return catalog.lookup(name)
    except Exception:  # catalog absent, or the model unknown: no window/prices
        return None


def _num(info: Any, *names: str) -> Any:
    for n in names:
        v = info.get(n) if isinstance(info, dict) else getattr(info, n, None)
        if isinstance(v, (int, float)) and v > 0:
            return v
    return None


def _prices(info: Any) -> tuple[float, float] | None:
    # the catalog's own field names first: a missing one costs an AttributeError inside pydantic
    p_in = _num(info, "input_per_m", "input_price", "price_in", "prompt_price", "input_usd_per_m")
    p_out = _num(info, "output_per_m", "output_price", "price_out", "completion_price", "output_usd_per_m")
    return (float(p_in), float(p_out)) if p_in is not None and p_out is not None else None


def _describe(sandbox: Any) -> dict[str, Any] | None:
    if sandbox is None:
        return None
    return {"type": type(sandbox).__name__, "workspace": getattr(sandbox, "workspace", None),
            "isolated": getattr(sandbox, "isolated", None), "isolation": getattr(sandbox, "isolation", None)}


__all__ = ["Agent", "Limits", "RunResult", "DEFAULT_SYSTEM"]
