"""The persistent shell session shared by every sandbox.

One long-lived ``bash`` reads commands from a pipe, so ``cd`` and ``export`` persist like in a
terminal. Each command is sent as one ``eval $'...'`` line (no quoting pitfalls, no extra process)
followed by a sentinel that carries a fresh random token, the exit code and the working
directory. The token is printed by joining two ``printf`` arguments, so it never appears in the
command text itself (not even under ``set -x``) and output that mimics a prompt or an older
sentinel cannot end a command early.

The shell runs with job control (``set -m``): every command gets its own process group, so a
timeout can kill exactly what the command started and leave the shell alive. Subclasses supply
the transport (``_spawn``), the way to kill processes (``_kill``) and where long outputs are saved.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import re
import secrets
import time
from dataclasses import dataclass

from agentkit.errors import SandboxError
from agentkit.sandboxes.base import ExecResult
from agentkit.sandboxes.output import OutputCapture

log = logging.getLogger(__name__)

# Variables that make interactive programs fail fast instead of waiting for a human.
NONINTERACTIVE_ENV: dict[str, str] = {
    "GIT_EDITOR": "true",
    "EDITOR": "true",
    "VISUAL": "true",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "SYSTEMD_PAGER": "",
    "LESS": "-FRX",
    "TERM": "dumb",
    "NO_COLOR": "1",
    "CLICOLOR": "0",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "SSH_ASKPASS": "true",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_NO_INPUT": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HISTFILE": "/dev/null",
}

_TOKEN_PREFIX = "__AGENTKIT_"
_STREAM_QUEUE = 64  # chunks buffered between the reader task and the command loop (backpressure)


def ansi_c_quote(text: str) -> str:
    """Quote ``text`` as a bash ``$'...'`` word: one line, any content, no expansion."""
    out = ["$'"]
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif o < 32 or o == 127:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    out.append("'")
    return "".join(out)


class Stream(abc.ABC):
    """A byte pipe to a running shell: stdout+stderr in, stdin out."""

    @abc.abstractmethod
    async def read(self) -> bytes:
        """Next chunk of output; ``b""`` at end of stream."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


@dataclass
class SessionLimits:
    timeout: float | None = 120.0  # default total time per command
    idle_timeout: float | None = None  # default time without output before the command is killed
    output_cap: int = 16_000  # bytes of output shown (head + tail)
    full_output_limit: int = 32 * 1024 * 1024  # bytes kept for the saved full-output file
    max_output: int = 32 * 1024 * 1024  # a command printing more than this is killed
    kill_grace: float = 3.0  # seconds to wait for the shell after killing a command


class ShellSession(abc.ABC):
    """A persistent bash plus the sentinel protocol; subclasses provide the process."""

    def __init__(self, workspace: str, env: dict[str, str] | None = None,
                 limits: SessionLimits | None = None) -> None:
        self.workspace = workspace
        self.env = {**NONINTERACTIVE_ENV, **(env or {})}
        self.limits = limits or SessionLimits()
        self.cwd = workspace
        self.shell_pid: int | None = None  # pid of bash as bash sees it ($$)
        self.restarts = 0
        # When set, the sentinel also reports how many processes the sandbox holds; at or above
        # this number the session's background processes are killed (a fork bomb, a leak).
        # Only meaningful where /proc shows the sandbox alone (a container's pid namespace).
        self.proc_guard: int | None = None
        self._stream: Stream | None = None
        self._queue: asyncio.Queue[bytes | None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._eof = False
        self._lock = asyncio.Lock()
        self._saved = 0
        self.last_nproc = 0

    # ----- what a subclass provides -------------------------------------------------
    @abc.abstractmethod
    async def _spawn(self) -> Stream:
        """Start a fresh ``bash --noprofile --norc`` reading commands from its stdin."""

    @abc.abstractmethod
    async def _kill(self, include_shell: bool) -> int | None:
        """Kill every process the shell started (and the shell itself if ``include_shell``).

        Returns how many processes were killed, or None when that is unknown.
        """

    @abc.abstractmethod
    async def _save_output(self, name: str, data: bytes) -> str | None:
        """Store a command's full output inside the sandbox; return its path there."""

    def _init_lines(self) -> list[str]:
        """Extra shell lines run at start (e.g. resource limits); override to add."""
        return []

    # ----- lifecycle ------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._stream is not None and not self._eof

    async def start(self) -> None:
        self._stream = await self._spawn()
        self._eof = False
        self._queue = asyncio.Queue(maxsize=_STREAM_QUEUE)
        self._reader = asyncio.create_task(self._pump(self._stream, self._queue))
        exports = " ".join(f"{k}={ansi_c_quote(v)}" for k, v in self.env.items())
        cwd = self.cwd
        script = [
            "exec 2>&1",
            "set -m",
            "set +o history",
            f"export {exports}",
            *self._init_lines(),
            f"cd -- {ansi_c_quote(cwd)} 2>/dev/null || cd -- {ansi_c_quote(self.workspace)}",
        ]
        token = secrets.token_hex(12)
        await self._send("\n".join(script) + "\n" + self._sentinel_cmd(token, "$$"))
        out, code, _, eof = await self._collect(token, time.monotonic() + 30, None, OutputCapture(4096, 0))
        if eof or code is None:
            raise SandboxError(f"the sandbox shell did not start: {out.text().strip()[:300] or 'no output'}")
        self.shell_pid = code

    async def close(self) -> None:
        if self._stream is None:
            return
        try:
            await self._kill(include_shell=True)
        except Exception as e:  # closing must not fail because the processes are already gone
            log.debug("kill on close failed: %s", e)
        await self._drop_stream()

    async def _drop_stream(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._stream is not None:
            try:
                await self._stream.close()
            except Exception as e:
                log.debug("closing stream failed: %s", e)
        self._stream = None
        self._eof = True

    async def restart(self) -> None:
        """Replace a dead or stuck shell; the working directory is restored, exports are not."""
        try:
            await self._kill(include_shell=True)
        except Exception as e:
            log.debug("kill before restart failed: %s", e)
        await self._drop_stream()
        self.restarts += 1
        await self.start()

    # ----- running commands ----------------------------------------------------------
    async def run(self, command: str, timeout: float | None = None,
                  idle_timeout: float | None = None) -> ExecResult:
        async with self._lock:
            return await self._run(command, timeout, idle_timeout)

    async def _run(self, command: str, timeout: float | None, idle_timeout: float | None) -> ExecResult:
        started = time.monotonic()
        notes: list[str] = []
        restarted = False
        if not self.alive:
            await self.restart()
            restarted = True
            notes.append("The previous shell session had died; a new one was started "
                          f"in {self.cwd} (exported variables were reset).")
        timeout = self.limits.timeout if timeout is None else timeout
        idle = self.limits.idle_timeout if idle_timeout is None else idle_timeout
        token = secrets.token_hex(12)
        capture = OutputCapture(self.limits.output_cap, self.limits.full_output_limit)
        line = f"eval {ansi_c_quote(command)} </dev/null\n" + self._sentinel_cmd(token, "$?")
        await self._send(line)
        deadline = started + timeout if timeout else None
        _, code, why, eof = await self._collect(token, deadline, idle, capture)
        timed_out = why is not None
        exit_code: int | None = code
        if why is not None:
            notes.append(why)
            killed = await self._kill(include_shell=False)
            # Give the shell a moment to notice and print the sentinel; keep what arrives. When
            # nothing was killed the shell itself is busy (a builtin loop): waiting long is useless.
            grace = self.limits.kill_grace if killed != 0 else min(self.limits.kill_grace, 0.5)
            _, code2, _, eof = await self._collect(token, time.monotonic() + grace,
                                                   None, capture, limit_output=False)
            exit_code = None
            if code2 is not None and not eof:
                # bash reports the killed job ("Killed ...") before its next command; let it do
                # so now, on a throwaway no-op, so the report does not leak into the next output.
                sync = secrets.token_hex(12)
                await self._send(self._sentinel_cmd(sync, "$?"))
                _, _, _, eof = await self._collect(sync, time.monotonic() + self.limits.kill_grace,
                                                   None, OutputCapture(4096, 0), limit_output=False)
            if code2 is None and not eof:
                notes.append("The shell itself did not recover, so the session was restarted "
                             f"in {self.cwd} (exported variables were reset).")
                await self.restart()
                restarted = True
        if not eof and self.proc_guard and self.last_nproc >= self.proc_guard:
            notes.append(f"The sandbox reached its process limit ({self.last_nproc} processes); every "
                         "process started by this session was killed.")
            await self._kill(include_shell=False)
        if eof:
            exit_code = None
            notes.append("The shell exited (the command ran `exit`, or the shell was killed); "
                         f"a new session was started in {self.cwd} (exported variables were reset).")
            await self.restart()
            restarted = True
        saved: str | None = None
        if capture.truncated:
            self._saved += 1
            try:
                saved = await self._save_output(f"{self._saved:04d}-{token[:8]}.log", bytes(capture.full))
            except Exception as e:
                log.warning("could not save full output: %s", e)
            if saved and not capture.full_complete:
                notes.append(f"The saved file holds only the first {len(capture.full)} of "
                             f"{capture.total} bytes.")
        return ExecResult(
            exit_code=exit_code,
            output=capture.text(saved),
            timed_out=timed_out,
            truncated=capture.truncated,
            restarted=restarted,
            full_output_path=saved,
            duration_s=round(time.monotonic() - started, 6),
            note=" ".join(notes),
        )

    def _sentinel_cmd(self, token: str, status: str) -> str:
        # The token is split over two printf arguments so it never appears verbatim in input.
        # Counting processes uses only a glob (no fork), so it works even at the pids limit.
        count = "__ak_n=(/proc/[0-9]*); " if self.proc_guard else "__ak_n=(); "
        return (f"__ak_s={status}; {count}printf '\\n%s%s:%d:%d:%s\\n' {_TOKEN_PREFIX} {token} "
                f"\"$__ak_s\" \"${{#__ak_n[@]}}\" \"$PWD\"; unset __ak_n __ak_s\n")

    async def _send(self, text: str) -> None:
        if self._stream is None:
            raise SandboxError("the sandbox is not started; call `await sandbox.start()` first")
        try:
            await self._stream.write(text.encode("utf-8", errors="surrogateescape"))
        except (BrokenPipeError, ConnectionError, OSError):
            self._eof = True

    async def _collect(self, token: str, deadline: float | None, idle: float | None,
                       capture: OutputCapture, limit_output: bool = True
                       ) -> tuple[OutputCapture, int | None, str | None, bool]:
        """Read until the sentinel. Returns (capture, exit code, why it was cut short, eof)."""
        assert self._queue is not None
        marker = f"\n{_TOKEN_PREFIX}{token}:".encode()
        pattern = re.compile(re.escape(marker) + rb"(-?\d+):(\d+):([^\n]*)\n")
        pending = bytearray()
        last = time.monotonic()
        while True:
            if self._eof:
                capture.add(bytes(pending))
                return capture, None, None, True
            now = time.monotonic()
            waits = []
            if deadline is not None:
                waits.append(deadline - now)
            if idle:
                waits.append(last + idle - now)
            wait = min(waits) if waits else None
            if wait is not None and wait <= 0:
                capture.add(bytes(pending))
                if deadline is not None and now >= deadline:
                    return capture, None, "The command timed out; it was killed and the output so far is shown.", False
                return capture, None, (f"The command produced no output for {idle:g}s; it was killed "
                                       "and the output so far is shown."), False
            try:
                chunk = await asyncio.wait_for(self._queue.get(), wait)
            except asyncio.TimeoutError:
                continue
            if chunk is None:
                self._eof = True
                continue
            last = time.monotonic()
            pending += chunk
            m = pattern.search(pending)
            if m:
                capture.add(bytes(pending[: m.start()]))
                self.cwd = m.group(3).decode("utf-8", errors="replace") or self.cwd
                self.last_nproc = int(m.group(2))
                return capture, int(m.group(1)), None, False
            if marker in pending:
                continue  # the sentinel line is still arriving
            keep = len(marker) - 1
            if len(pending) > keep:
                capture.add(bytes(pending[:-keep]))
                del pending[:-keep]
            if limit_output and capture.total > self.limits.max_output:
                return capture, None, (f"The command printed more than {self.limits.max_output} bytes; "
                                       "it was killed."), False

    @staticmethod
    async def _pump(stream: Stream, queue: asyncio.Queue[bytes | None]) -> None:
        try:
            while True:
                chunk = await stream.read()
                if not chunk:
                    break
                await queue.put(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.debug("shell stream ended: %s", e)
        await queue.put(None)
