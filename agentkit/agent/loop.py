"""The agent loop: ask the model, run the tools it calls, feed back observations, until done.

One run is a sequence of steps; each step asks the model for a turn (``ask.py``) and acts on it
(``calls.py``: tools, or the answer; bad output becomes an observation the model can correct).
Everything durable goes through the run record (``record.py``) to the trajectory as it happens,
so a killed run can be resumed; everything else is a typed event from ``agent.iter(task)``. The
budget (``budget.py``) is checked before each step and caps each call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, Sequence

from agentkit import events as ev
from agentkit.agent.ask import ask
from agentkit.agent.budget import Budget, Limits
from agentkit.agent.calls import check_tools, handle_turn
from agentkit.agent.record import (End, RunRecord, RunResult, mask_sandbox_secrets, open_writer, run_header,
                                   tool_context)
from agentkit.agent.compactor import ContextManager, ContextPolicy
from agentkit.agent.runs import AgentRun, EventCallback, run_sync
from agentkit.errors import AgentkitError, ContextWindowExceeded
from agentkit.messages import AssistantMessage, Message
from agentkit.models.base import Model, ModelSettings, close_models
from agentkit.tools.base import AnyTool, ToolContext, tool_schema

if TYPE_CHECKING:
    from agentkit.sandboxes.base import Sandbox

DEFAULT_SYSTEM = "You are a helpful agent. Use the tools to complete the task, then give the final answer."


class Agent:
    """Runs a model with tools until it answers, a limit is reached, or the run is cancelled.

    ``run(task)``/``run_sync(task)`` return a ``RunResult`` for a run that ends ``done``, ``limit``
    or ``cancelled`` and raise the typed error (``AuthError``, ``ModelError``, …; see
    ``agentkit.errors``) for one that ends ``error``, with ``.result`` and ``.trajectory_path``
    on it. ``iter(task)`` returns an ``AgentRun`` that yields typed events (``agentkit.events``)
    and never raises for a failed run. ``resume(path)`` continues a trajectory.

    ``model``: a ``Model``, or a name for ``make_model`` (then the agent owns it, and
    ``aclose()``/``close()``/``async with agent`` close it). ``thinking`` sets ``settings.thinking``, the one switch for reasoning (off when neither says).
    ``trajectory`` is the default JSONL log of each run (``trajectory=`` per call wins; a file is
    overwritten, and refused while another run writes it); ``run_info`` adds fields to the run
    header and to ``ToolContext.settings``; ``window``/``prices`` (USD per million input/output
    tokens) override the catalog. Each run keeps its own state, so runs may overlap.
    """

    def __init__(self, model: Model | str, tools: Iterable[AnyTool] = (), sandbox: Sandbox | None = None,
                 system: str | None = DEFAULT_SYSTEM, thinking: bool | None = None, limits: Limits | None = None,
                 settings: ModelSettings | None = None, trajectory: str | Path | None = None,
                 require_submit: bool = False, stream: bool = False, context_policy: ContextPolicy | None = None,
                 run_info: dict[str, Any] | None = None, fsync: bool = False, window: int | None = None,
                 prices: tuple[float, float] | None = None) -> None:
        self._owned: list[Model] = []  # what this agent made, and so closes
        if isinstance(model, str):
            from agentkit.models import make_model

            model = make_model(model)
            self._owned.append(model)
        self.model, self.sandbox, self.system = model, sandbox, system
        self.tools: dict[str, AnyTool] = check_tools(tools)
        self.limits = limits or Limits()
        settings = settings or ModelSettings()
        if thinking is not None or settings.thinking is None:
            settings = settings.model_copy(update={"thinking": bool(thinking)})
        self.settings = settings
        self.trajectory = Path(trajectory) if trajectory else None
        self.require_submit, self.stream, self.fsync = require_submit, stream, fsync
        self.run_info = dict(run_info or {})
        self._window, self._prices, self._policy = window, prices, context_policy or ContextPolicy()
        self.budget = self._new_budget()  # the settings each run's own budget and compactor start from
        self.compactor = self._new_compactor(self.budget)
        self.result: RunResult | None = None  # the last run that ended (prefer ``AgentRun.result``)
        self._runs: set[AgentRun] = set()

    # --- public API ----------------------------------------------------------------------
    def tool_schemas(self) -> list[dict[str, Any]]:
        """The OpenAI ``tools`` entries the model is sent."""
        return [tool_schema(t) for t in self.tools.values()]

    def iter(self, task: str, *, history: Sequence[Message] | None = None,
             trajectory: str | Path | None = None) -> AgentRun:
        """Start a run and watch it: ``async for event in agent.iter(task)``; it ends with ``RunEnded``.

        A failed run does not raise here: its last event has ``status="error"``, and the returned
        ``AgentRun`` holds ``result`` and ``error``. ``history``: the messages of an earlier run
        (``RunResult.messages``) to continue; ``trajectory``: this run's JSONL file."""
        return AgentRun(lambda run: self._drive(run, task=task, history=history, trajectory=trajectory))

    def iter_resume(self, path: str | Path) -> AgentRun:
        """Continue the run recorded in ``path`` (appending to it), as ``iter`` does."""
        return AgentRun(lambda run: self._drive(run, resume=Path(path)))

    async def run(self, task: str, *, history: Sequence[Message] | None = None,
                  trajectory: str | Path | None = None, on_event: EventCallback | None = None) -> RunResult:
        """Run ``task`` to its end: the ``RunResult`` (``done``, ``limit`` or ``cancelled``).

        Raises the typed ``AgentkitError`` that ended a failed run (``.result`` holds its
        ``RunResult``). ``history`` continues a conversation (``previous.messages``);
        ``trajectory`` writes this run's JSONL file; ``on_event`` gets each event of ``iter``."""
        return await self.iter(task, history=history, trajectory=trajectory).finish(on_event)

    async def resume(self, path: str | Path, *, on_event: EventCallback | None = None) -> RunResult:
        """Continue the trajectory at ``path`` from its last complete step; raises as ``run`` does."""
        return await self.iter_resume(path).finish(on_event)

    def run_sync(self, task: str, *, history: Sequence[Message] | None = None,
                 trajectory: str | Path | None = None, on_event: EventCallback | None = None) -> RunResult:
        """``run`` for synchronous code: the ``RunResult``, or the typed error of a failed run raised.

        Works inside a running event loop too (Jupyter), where
        the run goes on a private loop in a worker thread. ``on_event`` is called in the run's thread.
        The model's connections opened on that private loop are closed when the run ends."""
        return run_sync(self.iter(task, history=history, trajectory=trajectory), on_event, self.model.aclose)

    def resume_sync(self, path: str | Path, *, on_event: EventCallback | None = None) -> RunResult:
        """``resume`` for synchronous code: the ``RunResult``, or the error of a failed run raised."""
        return run_sync(self.iter_resume(path), on_event, self.model.aclose)

    def cancel(self) -> None:
        """Ask every run of this agent in progress to stop before its next step (status ``cancelled``)."""
        for run in list(self._runs):
            run.cancel()

    async def aclose(self) -> None:
        """Close what this agent created (a model it built from a name); the model and sandbox
        you passed in stay yours to close."""
        for model in self._owned:
            await model.aclose()

    def close(self) -> None:
        """``aclose`` for synchronous code."""
        close_models(self._owned)

    async def __aenter__(self) -> "Agent":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _new_budget(self) -> Budget:
        return Budget.for_model(self.limits, self.model, self.settings, self._window, self._prices)

    def _new_compactor(self, budget: Budget) -> ContextManager:
        return ContextManager(self._policy, self.model.name, budget.window,
                              reserve=self.settings.max_tokens or budget.max_output)

    # --- the loop ------------------------------------------------------------------------
    async def _drive(self, run: AgentRun, task: str | None = None, resume: Path | None = None,
                     history: Sequence[Message] | None = None,
                     trajectory: str | Path | None = None) -> AsyncIterator[ev.Event]:
        run.budget = budget = self._new_budget()  # per run: runs of one agent may overlap
        run.compactor = compactor = self._new_compactor(budget)
        rec = self._resume(resume) if resume else self._start(task or "", history, trajectory)
        self._runs.add(run)
        cut = compactor.cut_observation
        try:
            if resume and rec.end is None:
                for e in rec.interrupt_open_calls(cut):
                    yield e
            while rec.end is None:
                if run.cancelled:
                    rec.end = ("cancelled", None, "the run was cancelled")
                    break
                limit = budget.exceeded(rec.steps, rec.usage)
                if limit is None:
                    messages = await self._compact(rec, compactor, rec.shrink)
                    for e in rec.flush():
                        yield e
                    prompt_tokens = compactor.last_tokens  # counted by the compaction check
                    max_tokens, limit = budget.cap(rec.steps, rec.usage, prompt_tokens)
                if limit is not None:
                    rec.limit(limit)
                    yield limit
                    break
                yield ev.ModelCallStarted(step=rec.steps + 1, prompt_tokens=prompt_tokens, max_tokens=max_tokens,
                                          messages=len(messages))
                settings = self.settings.model_copy(update={"max_tokens": max_tokens}) if max_tokens else self.settings
                try:
                    async for e in ask(self.model, rec, messages, self.tool_schemas() or None, settings, self.stream):
                        yield e
                except ContextWindowExceeded as exc:  # our count was short: compact harder, once
                    if rec.shrink is not None:
                        raise
                    rec.shrink = prompt_tokens // 2
                    rec.event("error", error=str(exc), recovery="compaction")
                    continue
                rec.shrink = None
                async for e in handle_turn(rec, self.tools, budget, cut, self.require_submit):
                    yield e
        except (asyncio.CancelledError, GeneratorExit):
            rec.close_open_calls(cut)
            self._finish(run, rec, ("cancelled", None, "the run was cancelled"))
            raise
        except AgentkitError as exc:  # model failures (retries exhausted, auth, context) end the run
            rec.end, rec.exc = ("error", None, str(exc)), exc
        except Exception as exc:  # a bug: still leave a complete trajectory, then let it surface
            self._finish(run, rec, ("error", None, f"internal error: {type(exc).__name__}: {exc}"))
            raise
        finally:
            self._runs.discard(run)
        for e in rec.flush():
            yield e
        yield self._finish(run, rec, rec.end or ("error", None, "ended without a status"))

    async def _compact(self, rec: RunRecord, compactor: ContextManager, target: int | None = None) -> list[Message]:
        async def summarize(request: list[Message]) -> tuple[AssistantMessage, dict[str, Any] | None]:
            # the run's own tools: the request repeats the last prompt, so it is a cache hit
            c = await self.model.complete(request, self.tool_schemas() or None, self.settings,
                                          on_event=rec.model_event)
            rec.add_usage(c.usage)
            return c.message, c.usage.model_dump()

        new, done = await compactor.compact(rec.messages, self.tool_schemas(), summarize, target=target)
        rec.compacted(new, done)
        return list(new)

    # --- starting, resuming, ending --------------------------------------------------------
    def _tool_ctx(self, run_id: str, sources: list[dict[str, Any]] | None = None) -> ToolContext:
        return tool_context(self.sandbox, {**self.settings.model_dump(exclude_none=True), **self.run_info},
                            run_id, sources)

    def _start(self, task: str, history: Sequence[Message] | None, trajectory: str | Path | None) -> RunRecord:
        header = run_header(self.model, self.settings, self.sandbox, self.limits, self.require_submit, self.system)
        path = Path(trajectory) if trajectory else self.trajectory
        writer = open_writer(path, self.model, self.fsync) if path else None
        rec = RunRecord.new(task, self.system, self._tool_ctx(RunRecord.new_id()), writer, header, self.run_info,
                            self.tool_schemas(), history=history)
        if writer is not None:
            mask_sandbox_secrets(writer, self.sandbox)
        return rec

    def _resume(self, path: Path) -> RunRecord:
        rec = RunRecord.resume(path, self._tool_ctx, lambda p: mask_sandbox_secrets(
            open_writer(p, self.model, self.fsync, append=True), self.sandbox))
        if hasattr(self.model, "skip"):
            self.model.skip(rec.model_turns)  # a replay continues after the turns already played
        return rec

    def _finish(self, run: AgentRun, rec: RunRecord, end: End) -> ev.RunEnded:
        event, self.result = rec.finish(end)
        run.ended(self.result, rec.exc)
        return event


__all__ = ["Agent", "AgentRun", "DEFAULT_SYSTEM"]
