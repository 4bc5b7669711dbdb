"""Spread async work over several Python processes, each running many coroutines at once.

One interpreter runs Python on one core at a time (the GIL), so hundreds of concurrent runs in
one event loop are bound by that core's speed even when every run is only waiting on the model.
``ProcessPool`` starts N child interpreters, each an event loop that awaits ``target(arg)`` for
every item it is sent, as many at a time as it is sent; the parent hands each item to the child
with the fewest in flight. Items and results travel as JSON lines over the children's stdin and
(a private copy of) their stdout, so a target may print freely. A child that dies fails only its
own items (``WorkerDied``) and is started again for the next one; a child whose parent dies sees
its stdin close, cancels what it runs and exits. Ctrl-C is the parent's to handle: children ignore
SIGINT and stop when the parent closes their stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from agentkit.errors import AgentkitError

_LIMIT = 64 * 1024 * 1024  # longest JSON line either side accepts
CHILD_GC_THRESHOLDS = (20_000, 20, 10)
# A burst of items (a batch's first hundred runs) starts in groups with a loop turn between them.
# Started all at once, every run is set up before any connects, so all first requests leave
# together and their replies queue together; in groups the first runs are talking to the model
# while the rest are set up (the concurrency benchmark: 0.04 s less wall time, 5 of 5 pairs).
START_GROUP = 8
# A child ignores SIGINT from its first statement: Ctrl-C in a terminal reaches the whole process
# group, and the parent alone answers it (it closes the children's stdin, so they cancel their
# items and exit) instead of every child printing its own KeyboardInterrupt traceback.
_CHILD = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
          "import sys; sys.path[0:1] = {path!r}; from agentkit.procpool import child_main; child_main({target!r})")


class WorkerDied(AgentkitError):
    """The child process running an item exited before answering it."""


class WorkerFailed(Exception):
    """``target`` raised in the child (a bug there, not an error of ours); ``error_type`` is the
    exception's class name."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


_ignoring: list[Any] = []  # the SIGINT handler to restore, while children are being started


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while children start (an ignored signal stays ignored across exec, and Python
    keeps it so); starts overlap, so the last one out restores the handler. Only the main thread may
    change it; elsewhere the child's first statement does it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not _ignoring:
        _ignoring.append(signal.getsignal(signal.SIGINT))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _ignoring.append(None)
    try:
        yield
    finally:
        _ignoring.pop()
        if len(_ignoring) == 1:
            handler = _ignoring.pop()
            signal.signal(signal.SIGINT, handler if handler is not None else signal.default_int_handler)


def _kill(proc: asyncio.subprocess.Process) -> None:
    try:
        proc.kill()
    except ProcessLookupError:  # already gone
        pass


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # _spawn reports a failed start itself; when Ctrl-C cancelled the start nobody awaits this
        # future any more, and asyncio would log its exception as "never retrieved"
        self.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.reader = asyncio.create_task(self._read())

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.reader.done()

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                msg = json.loads(line)
                if "ready" in msg:
                    self.ready.set_result(None)
                    continue
                fut = self.pending.pop(msg["id"], None)
                if fut is None or fut.done():
                    continue
                if "error" in msg:
                    fut.set_exception(WorkerFailed(msg["error"], msg.get("type", "Exception")))
                else:
                    fut.set_result(msg.get("ok"))
        finally:
            if self.proc.returncode is None and not self.proc.stdout.at_eof():
                _kill(self.proc)  # it spoke out of turn (or this reader was cancelled): it cannot be trusted
            code = await self.proc.wait()
            died = WorkerDied(f"worker process {self.proc.pid} exited with code {code} before answering")
            if not self.ready.done():
                self.ready.set_exception(died)
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(died)
            self.pending.clear()

    def send(self, item_id: int, arg: Any) -> asyncio.Future[Any]:
        assert self.proc.stdin is not None
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[item_id] = fut
        self.proc.stdin.write(_line({"id": item_id, "arg": arg}))
        return fut


class ProcessPool:
    """``processes`` children that each await ``target(arg)`` for the items given to them.

    ``target`` is ``"module:function"``, an ``async def`` taking and returning JSON values;
    ``path`` is put in front of the children's ``sys.path`` (the current directory is not)."""

    def __init__(self, target: str, processes: int, *, path: Sequence[str] = (),
                 env: dict[str, str] | None = None, start_timeout_s: float = 60.0) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        if ":" not in target:
            raise ValueError(f"target {target!r} must look like 'module:function'")
        self.target, self.processes, self.path = target, processes, [os.fspath(p) for p in path]
        self.env, self.start_timeout_s = env, start_timeout_s
        self._children: list[_Child | None] = [None] * processes
        self._next_id = 0
        self._starting: dict[int, asyncio.Task[_Child]] = {}

    async def __aenter__(self) -> ProcessPool:
        await asyncio.gather(*(self._child(i) for i in range(self.processes)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _spawn(self) -> _Child:
        code = _CHILD.format(path=self.path, target=self.target)
        with _sigint_ignored():  # inherited through exec: no window where the child's startup takes Ctrl-C
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                env=self.env, limit=_LIMIT)
        child = _Child(proc)
        try:
            await asyncio.wait_for(asyncio.shield(child.ready), self.start_timeout_s)
        except (WorkerDied, asyncio.TimeoutError):
            _kill(proc)
            await asyncio.gather(child.reader, return_exceptions=True)
            if child.ready.done() and not child.ready.cancelled():
                child.ready.exception()  # seen here: asyncio must not log it as never retrieved
            raise WorkerDied(f"worker process for {self.target} did not start (see its error above)") from None
        return child

    async def _child(self, index: int) -> _Child:
        child = self._children[index]
        if child is not None and child.alive:
            return child
        if index not in self._starting:  # one start per slot, however many items wait for it
            self._starting[index] = asyncio.create_task(self._spawn())
        try:
            child = await self._starting[index]
        finally:
            self._starting.pop(index, None)
        self._children[index] = child
        return child

    def _least_busy(self) -> int:
        return min(range(self.processes),
                   key=lambda i: len(c.pending) if (c := self._children[i]) is not None and c.alive else 0)

    async def submit(self, arg: Any) -> Any:
        """Run ``target(arg)`` in the child with the fewest items in flight; its result."""
        return await self._submit_to(self._least_busy(), arg)

    async def broadcast(self, arg: Any) -> list[Any]:
        """Run ``target(arg)`` once in every child (a warm-up, a stats query); results by child."""
        return list(await asyncio.gather(*(self._submit_to(i, arg) for i in range(self.processes))))

    async def _submit_to(self, index: int, arg: Any) -> Any:
        child = await self._child(index)
        self._next_id += 1
        return await child.send(self._next_id, arg)

    async def aclose(self, timeout_s: float = 15.0) -> None:
        """Close the children's stdin (they cancel what they run and exit); kill any that linger."""
        children = [c for c in self._children if c is not None]
        self._children = [None] * self.processes
        for c in children:
            if c.proc.stdin is not None and not c.proc.stdin.is_closing():
                c.proc.stdin.close()
        for c in children:
            try:
                await asyncio.wait_for(asyncio.shield(c.reader), timeout_s)
            except asyncio.TimeoutError:
                _kill(c.proc)
                await c.reader


# -- the child side ----------------------------------------------------------------------------------

def _resolve(target: str) -> Callable[[Any], Awaitable[Any]]:
    module, _, name = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def child_main(target: str) -> None:
    """Entry point of a child: answer items from stdin until it closes."""
    out = os.dup(1)
    os.dup2(2, 1)  # what the target prints goes to stderr; the protocol keeps the real stdout
    sys.stdout = sys.stderr
    fn = _resolve(target)
    # A child keeps hundreds of runs' conversations alive at once, so most young objects survive
    # and the default thresholds (700, 10, 10) rescan them again and again: 13% of the CPU in
    # the concurrency benchmark. Freeze what the imports made (it is never garbage) and collect
    # the young generation less often; a collection then pauses the loop for a few ms.
    gc.freeze()
    gc.set_threshold(*CHILD_GC_THRESHOLDS)
    asyncio.run(_serve(fn, out))


def _line(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, ensure_ascii=False).encode() + b"\n"


def _write(fd: int, data: bytes) -> None:
    while data:  # a pipe may take less than a whole line at once
        data = data[os.write(fd, data):]


async def _serve(fn: Callable[[Any], Awaitable[Any]], out: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    running: set[asyncio.Task[None]] = set()

    async def answer(item_id: int, arg: Any) -> None:
        try:  # a result that is not JSON is the target's error too
            data = _line({"id": item_id, "ok": await fn(arg)})
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure goes back to the parent, the child lives on
            data = _line({"id": item_id, "error": str(e) or type(e).__name__, "type": type(e).__name__})
        _write(out, data)

    _write(out, _line({"ready": os.getpid()}))
    started = 0
    while line := await reader.readline():
        item = json.loads(line)
        task = asyncio.create_task(answer(item["id"], item["arg"]))
        running.add(task)
        task.add_done_callback(running.discard)
        started += 1
        if started % START_GROUP == 0:  # let the ones already started reach the network
            await asyncio.sleep(0)
    for task in list(running):  # the parent is gone or done: stop what is left
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
