"""One run of an agent (``AgentRun``) and the synchronous facade.

``agent.iter(task)`` returns an ``AgentRun``: an async iterator of the run's typed events that
ends with ``RunEnded``, then holds ``result`` (and ``error`` when the run failed). Each run has its
own state (record, budget, compaction), so several runs of one ``Agent`` may go on at once.
``call_sync`` runs a coroutine from synchronous code, also inside a running event loop (Jupyter).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable, TypeVar

from agentkit import events as ev
from agentkit.errors import AgentkitError, ModelError

if TYPE_CHECKING:
    from agentkit.agent.budget import Budget
    from agentkit.agent.compactor import ContextManager
    from agentkit.agent.record import RunResult

T = TypeVar("T")
EventCallback = Callable[[ev.Event], object]


class AgentRun:
    """One run: ``async for event in run`` yields its events; afterwards ``result`` holds the outcome.

    Iterating never raises for a run that fails: the last event is ``RunEnded(status="error")``,
    ``result.status == "error"`` and ``error`` is the typed exception (with ``.result`` set) that
    ``Agent.run()`` would raise. Mistakes found before the first step (a trajectory file another
    run is writing, a resume file that does not exist) raise ``ConfigError`` from the iteration.
    """

    def __init__(self, events: Callable[["AgentRun"], AsyncIterator[ev.Event]]) -> None:
        self.result: RunResult | None = None  # set when the run has ended
        self.error: AgentkitError | None = None  # the error that ended it (status ``error``)
        self.cancelled = False
        self.budget: Budget | None = None  # this run's budget and compaction state, once started
        self.compactor: ContextManager | None = None
        self._events = events(self)

    def __aiter__(self) -> "AgentRun":
        return self

    async def __anext__(self) -> ev.Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop the run (its trajectory ends ``cancelled``) if it has not ended."""
        await self._events.aclose()

    def cancel(self) -> None:
        """Ask the run to stop before its next step (status ``cancelled``)."""
        self.cancelled = True

    def ended(self, result: RunResult, exc: AgentkitError | None) -> None:
        """Record the outcome; a failed run gets its typed error, carrying the result."""
        self.result = result
        if result.status == "error":
            error = exc or ModelError(result.error or "the run failed")
            error.result, error.trajectory_path = result, result.trajectory_path
            self.error = error

    async def finish(self, on_event: EventCallback | None = None) -> RunResult:
        """Drive the run to its end (each event to ``on_event``); the result, or the run's error raised."""
        async for event in self:
            if on_event is not None:
                on_event(event)
        return self.outcome()

    def outcome(self) -> RunResult:
        """The result of an ended run; raises its typed error when its status is ``error``."""
        if self.result is None:
            raise RuntimeError("the run has not ended; iterate it to the end first")
        if self.error is not None:
            raise self.error
        return self.result


def call_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run ``make()`` to completion from synchronous code.

    Outside an event loop: ``asyncio.run``. Inside one (a Jupyter cell, an async framework's
    thread): on a private event loop in a worker thread, while the caller's thread waits."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(make))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agentkit-sync") as pool:
        return pool.submit(lambda: asyncio.run(_await(make))).result()


async def _await(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def run_sync(run: AgentRun, on_event: EventCallback | None = None,
             release: Callable[[], Awaitable[None]] | None = None) -> RunResult:
    """``run.finish()`` from synchronous code; Ctrl-C ends the run ``cancelled`` and returns its result.

    ``release`` runs last on the run's private event loop, before that loop closes: the model's
    connections of that loop (``model.aclose()``), which would otherwise leak with it."""
    async def go() -> RunResult:
        try:
            return await run.finish(on_event)
        finally:
            if release is not None:
                await release()

    try:
        return call_sync(go)
    except KeyboardInterrupt:  # asyncio.run cancelled the run, which logged its end
        if run.result is None:
            raise
        return run.result


__all__ = ["AgentRun", "EventCallback", "call_sync", "run_sync"]
