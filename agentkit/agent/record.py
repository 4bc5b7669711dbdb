"""The run record: one run's state between steps, and its trajectory.

``RunRecord`` holds the conversation (``messages``), the tools' ``tool_ctx``, the counters the
loop keeps, and the trajectory writer; every change that must survive a crash goes through it,
so the loop above it only asks, acts and records. ``RunRecord.new`` writes the run header;
``RunRecord.resume`` continues a trajectory from its last complete step.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

from pydantic import BaseModel, Field

import agentkit
from agentkit import events as ev
from agentkit.agent.compactor import Compaction
from agentkit.errors import AgentkitError, ConfigError
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, Usage, UserMessage
from agentkit.models.base import Completion, Model, ModelEvent, ModelSettings
from agentkit.redact import env_secrets, model_secrets
from agentkit.tools.base import Observation, Source, SourceTable, ToolContext
from agentkit.trajectory import Trajectory, TrajectoryWriter, scrub

if TYPE_CHECKING:
    from agentkit.sandboxes.base import Sandbox

Status = Literal["done", "limit", "error", "cancelled"]
End = tuple[Status, str | None, str | None]  # status, answer, error
INTERRUPTED = ("Error: the previous call was interrupted (the run stopped before it returned); its effects "
               "are unknown. Check the current state before you repeat it.")
_CORE_KEYS = {"type", "v", "t", "id", "agentkit_version", "created", "task", "tools"}


class RunResult(BaseModel):
    """The outcome of one run: the one place to read a finished run from Python.

    ``status``: ``done`` (``answer`` is the final answer), ``limit`` (a ``Limits`` budget was
    reached), ``cancelled``, or ``error`` (then ``error`` says why; ``Agent.run`` raises instead
    of returning, with this result on the exception). ``messages`` is the whole conversation
    (pass it as ``history=`` to continue it); ``usage``/``cost_usd`` are totals over the run's
    calls; ``sources`` the numbered sources the answer's ``[citation:N]`` refer to."""

    status: Status
    answer: str | None = None
    steps: int = 0  # model calls
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = 0.0
    trajectory_path: str | None = None
    sources: list[Source] = Field(default_factory=list)  # typed: result.sources[0].url
    error: str | None = None
    error_type: str | None = None  # the agentkit error that ended the run, e.g. "AuthError"
    error_status: int | None = None  # its HTTP status, for model errors
    messages: list[Message] = Field(default_factory=list)  # the conversation, system prompt first


def tool_context(sandbox: Sandbox | None, settings: dict[str, Any], run_id: str,
                 sources: list[dict[str, Any]] | None = None) -> ToolContext:
    """What the run's tools get: the sandbox, the run's settings (no secrets), its sources."""
    table = SourceTable([Source(**s) for s in sources or []])
    return ToolContext(sandbox=sandbox, settings=scrub(settings), sources=table, run_id=run_id)


def describe_sandbox(sandbox: Sandbox | None) -> dict[str, Any] | None:
    if sandbox is None:
        return None
    return {"type": type(sandbox).__name__, "workspace": getattr(sandbox, "workspace", None),
            "isolated": getattr(sandbox, "isolated", None), "isolation": getattr(sandbox, "isolation", None)}


def run_header(model: Model, settings: ModelSettings, sandbox: Sandbox | None, limits: BaseModel,
               require_submit: bool, system: str | None) -> dict[str, Any]:
    """The run header's fields (``RunRecord.new`` adds id, version, time, task and tools)."""
    return {"model": model.name, "provider": getattr(model, "provider", None),
            "settings": settings.model_dump(exclude_none=True),
            "thinking": settings.thinking,  # for readers: the same switch as settings.thinking
            # the request fields that carried it (providers.py), where the model says
            **({"thinking_sent": model.thinking_sent(settings.thinking)} if hasattr(model, "thinking_sent") else {}),
            "sandbox": describe_sandbox(sandbox), "preset": None, "limits": limits.model_dump(),
            "require_submit": require_submit, "system": system}


def open_writer(path: Path, model: Model, fsync: bool, append: bool = False) -> TrajectoryWriter:
    # every key of a fallback chain, not only the first model's
    return TrajectoryWriter(path, fsync=fsync, secrets=model_secrets(model), append=append)


def mask_sandbox_secrets(writer: TrajectoryWriter, sandbox: Sandbox | None) -> TrajectoryWriter:
    """From now on ``writer`` masks the values of the sandbox's secret-looking variables (``--env
    API_TOKEN=...``), which a command may print. Called after the run header: its options are what
    resume runs again, and a short password must not mangle, say, the test command stored there."""
    for secret in env_secrets(getattr(sandbox, "env", None)):
        writer.add_secret(secret)
    return writer


class RunRecord:
    """Everything one run (or one resumed session) carries between steps, and its trajectory."""

    def __init__(self, messages: list[Message], tool_ctx: ToolContext, writer: TrajectoryWriter | None,
                 steps: int = 0, usage: Usage | None = None) -> None:
        self.messages, self.tool_ctx, self.writer = messages, tool_ctx, writer
        self.steps, self.usage = steps, usage or Usage()
        self.format_errors = 0  # malformed turns in a row
        self.repeat_key: Any = None
        self.repeats = 0
        self.reminded = False  # told to finish with ``submit``
        self.completion: Completion | None = None  # the turn just received
        self.problems: list[str] = []  # format errors found in the current turn's calls
        self.shrink: int | None = None  # prompt target after the provider said the prompt is too long
        self.end: End | None = None
        self.exc: AgentkitError | None = None  # the typed error that ended the run, if one did
        self.model_turns = 0  # turns a replayed model already played (resume)
        self.n_sources = len(tool_ctx.sources)
        self._pending: list[ev.Event] = []

    # --- starting and resuming -----------------------------------------------------------
    @classmethod
    def new(cls, task: str, system: str | None, tool_ctx: ToolContext, writer: TrajectoryWriter | None,
            header: dict[str, Any], run_info: dict[str, Any], tools: list[dict[str, Any]],
            history: Sequence[Message] | None = None) -> "RunRecord":
        """A fresh run; with a writer, the run header (``run_info`` adds to it) and the first messages.

        ``history``: an earlier conversation to continue (its own system message, if any, stays)."""
        messages = list(history or [])
        if system and not (messages and isinstance(messages[0], SystemMessage)):
            messages.insert(0, SystemMessage(content=system))
        messages.append(UserMessage(content=task))
        rec = cls(messages, tool_ctx, writer)
        if writer:
            header = {**header, **{k: v for k, v in run_info.items() if k not in _CORE_KEYS}}  # caller knows better
            writer.run(id=tool_ctx.run_id, agentkit_version=agentkit.__version__, created=time.time(), task=task,
                       tools=tools, **header)
            for m in messages:
                writer.message(0, m)
        return rec

    @staticmethod
    def new_id() -> str:
        """A fresh run id."""
        return uuid.uuid4().hex[:16]

    @classmethod
    def resume(cls, path: Path, make_ctx: Callable[[str, list[dict[str, Any]]], ToolContext],
               open_writer: Callable[[Path], TrajectoryWriter]) -> "RunRecord":
        """The run a trajectory left, ready for its next step (``end`` set when it was done)."""
        if not path.exists():
            raise ConfigError(f"trajectory {path} not found; pass the .jsonl file a run wrote")
        traj = Trajectory.load(path, strict=True)  # a damaged file is a one-line error, not a traceback
        try:
            ctx = make_ctx(str(traj.run.get("id", "")), traj.sources)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}: the sources record is damaged: {' '.join(str(e).split())[:160]}") from None
        rec = cls(traj.next_context(), ctx, open_writer(path), steps=traj.steps, usage=traj.usage)
        rec.model_turns = traj.model_turns
        if traj.status == "done":
            rec.end = ("done", traj.answer, None)
        rec.event("resume", previous_status=traj.status, steps=traj.steps)
        return rec

    # --- what happens, as it happens -----------------------------------------------------
    def add_reply(self, c: Completion) -> None:
        """The model's turn: one more step, its usage, its message."""
        self.steps, self.usage, self.completion = self.steps + 1, self.usage + c.usage, c
        self.messages.append(c.message)
        if self.writer:
            self.writer.message(self.steps, c.message, usage=c.usage, latency_s=round(c.latency_s, 4),
                                cost_usd=c.usage.cost_usd, finish_reason=c.finish_reason, model=c.model,
                                provider=c.provider, warnings=c.warnings or None)

    def add_result(self, call: ToolCall, obs: Observation, took: float, content: str) -> ToolMessage:
        """A tool call's observation (``content``: its text as the model gets it)."""
        msg = ToolMessage(tool_call_id=call.id, name=call.name, content=content)
        self.messages.append(msg)
        if self.writer:
            self.writer.tool_result(self.steps, msg, obs.model_dump(), took)
        return msg

    def say(self, text: str, warn: bool = False) -> None:
        """Add a runtime note to the conversation (logged as a user message from the agent)."""
        msg = UserMessage(content=text)
        self.messages.append(msg)
        if self.writer:
            self.writer.message(self.steps, msg, origin="agent")
        self._pending.append(ev.Warning(step=self.steps, text=text))
        if warn:
            self.event("warning", text=text)

    def check_repeats(self, calls: list[ToolCall], n: int) -> None:
        """The same calls with the same results ``n`` times in a row: a warning; once more: the end."""
        key = [(c.name, c.arguments) for c in calls] + [m.text for m in self.messages[-len(calls):]]
        self.repeats = self.repeats + 1 if key == self.repeat_key else 1
        self.repeat_key = key
        if n and self.repeats == n:
            self.say(f"You have made the same call {n} times in a row and got the same result each time. "
                     "Try something different, or give your final answer.", warn=True)
        elif n and self.repeats > n:
            self.end = ("error", None, f"the model repeated the same action {self.repeats} times with the same result")

    def add_usage(self, usage: Usage) -> None:
        """A call that is not a step (a summary for compaction)."""
        self.usage = self.usage + usage

    def compacted(self, messages: list[Message], done: list[Compaction]) -> None:
        """Take the compacted conversation, and log each compaction."""
        for comp in done:
            self.event("compaction", **comp.model_dump(exclude_none=True))
            self._pending.append(ev.CompactionDone(step=self.steps, strategy=comp.strategy, start=comp.start,
                                                   end=comp.end, tokens_before=comp.tokens_before,
                                                   tokens_after=comp.tokens_after))
        self.messages = messages

    def note_sources(self) -> None:
        """Log the source table when tools added to it."""
        if len(self.tool_ctx.sources) != self.n_sources:
            self.n_sources = len(self.tool_ctx.sources)
            self.event("sources", sources=[s.model_dump() for s in self.tool_ctx.sources.all()])

    def model_event(self, m: ModelEvent) -> None:
        """A retry, fallback or tool-mode switch inside a model call."""
        if m.kind == "tool_mode":
            self.event(m.kind, model=m.model, mode=m.mode, error=m.error, status=m.status)
            return
        self.event(m.kind, **m.model_dump(exclude={"kind", "mode"}))
        if m.kind == "retry":
            self._pending.append(ev.Retry(step=self.steps, model=m.model, attempt=m.attempt, error=m.error,
                                          status=m.status, wait_s=m.wait_s, discarded=m.discarded))
        else:
            self._pending.append(ev.FallbackUsed(step=self.steps, model=m.model, to_model=m.to_model,
                                                 error=m.error, discarded=m.discarded))

    def limit(self, lim: ev.LimitReached) -> None:
        """End the run at a reached limit (logged as an event)."""
        self.event("limit", limit=lim.limit, value=lim.value, maximum=lim.maximum)
        self.end = ("limit", None, f"{lim.limit} limit reached ({lim.value:g} of {lim.maximum:g})")

    def event(self, kind: str, **fields: Any) -> None:
        """Log an event to the trajectory."""
        if self.writer:
            self.writer.event(kind, step=self.steps, **fields)

    def flush(self) -> list[ev.Event]:
        """The events recorded since the last flush, for the caller of ``agent.iter``."""
        out, self._pending = self._pending, []
        return out

    # --- calls a stopped run left open -----------------------------------------------------
    def open_calls(self) -> list[ToolCall]:
        """Calls of the last assistant turn that have no result yet (the run was killed mid-turn)."""
        for i in range(len(self.messages) - 1, -1, -1):
            m = self.messages[i]
            if isinstance(m, AssistantMessage):
                answered = {t.tool_call_id for t in self.messages[i + 1:] if isinstance(t, ToolMessage)}
                return [c for c in m.tool_calls if c.id not in answered]
        return []

    def interrupt_open_calls(self, cut: Callable[[str], str]) -> list[ev.Event]:
        """Calls the run was killed in the middle of: never run again (a command that appends to a
        file would append twice); the model is told their effects are unknown, so it can check."""
        out: list[ev.Event] = []
        for call in self.open_calls():
            self.add_result(call, Observation(text=INTERRUPTED, is_error=True), 0.0, cut(INTERRUPTED))
            out.append(ev.ToolCallFinished(step=self.steps, call_id=call.id, name=call.name, text=INTERRUPTED,
                                           is_error=True, duration_s=0.0))
        return out

    def close_open_calls(self, cut: Callable[[str], str]) -> None:
        """Answer the calls a cancelled turn left open, so the conversation stays valid."""
        text = "Error: cancelled before it finished"
        for call in self.open_calls():
            self.add_result(call, Observation(text=text, is_error=True), 0.0, cut(text))

    # --- the end ---------------------------------------------------------------------------
    def finish(self, end: End) -> tuple[ev.RunEnded, RunResult]:
        """Write the end record (once) and close the trajectory; the run's last event and result."""
        status, answer, error = end
        sources = [s.model_dump() for s in self.tool_ctx.sources.all()]
        if self.writer and not self.writer.closed:
            self.writer.end(status, answer, self.usage, self.usage.cost_usd, steps=self.steps, error=error,
                            sources=sources)
            self.writer.close()
        result = RunResult(status=status, answer=answer, steps=self.steps, usage=self.usage,
                           cost_usd=self.usage.cost_usd, sources=self.tool_ctx.sources.all(), error=error,
                           error_type=type(self.exc).__name__ if self.exc else None,
                           error_status=getattr(self.exc, "status", None),
                           trajectory_path=str(self.writer.path) if self.writer else None,
                           messages=list(self.messages))
        return ev.RunEnded(step=self.steps, status=status, answer=answer, error=error, usage=self.usage,
                           cost_usd=self.usage.cost_usd), result
