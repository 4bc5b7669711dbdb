"""Batch runs: many tasks, N at a time, one sandbox and one folder per task.

The ledger is a JSONL file in the output folder with one line per finished task, appended as each
finishes: ``results.jsonl``, or ``results.shard-I.jsonl`` for shard I. Every ledger in the folder
counts: a re-run skips the ids found in any of them, so a killed batch resumes where it stopped,
and a global cost budget is what they add up to; it stops *launching* tasks once reached (running
ones finish).

``--processes N`` (:func:`run_shards`) starts N ordinary ``agentkit batch --shard I/N`` children
over the same tasks file, so hundreds of concurrent runs are not bound to the one core a Python
process uses. Task k of the file (from 0) belongs to shard ``k % N + 1``; each shard writes its own
ledger; the parent prints the results as they land, stops the children on Ctrl-C, and sums the
ledgers up. With ``ray`` set, each task is a Ray task that brings up its own sandbox on the worker
it lands on; its files come back to this machine so the output folder looks the same as a local
run's.

A task that ended in an error a re-run can fix (a rejected key, the network, a rate limit, a worker
that crashed: see :func:`retryable`) is marked ``"retry": true`` in the ledger and, by default
(``retry_errors``), runs again on the next invocation with that invocation's options; its new line
replaces the old one. :func:`preflight` sends one cheap request before a batch starts, so a wrong key
or an unreachable endpoint is one error, not hundreds. ``index.html`` in the output folder lists
every task with a link to its viewer page.

Why one module over 450 lines: the ledger, the shard split and the cost budget are one protocol
between processes; reading it in one place is what keeps "each task exactly once" checkable.
"""

from __future__ import annotations

import asyncio
import atexit
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Awaitable, Callable, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentkit.app.records import jsonl_lines, validated
from agentkit.errors import AgentkitError, ConfigError
from agentkit.app.runner import RunOptions, run_or_resume, run_task
from agentkit.sandboxes.base import env_name_problem

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
INDEX = "index.html"
T = TypeVar("T")
# Not sent back from Ray workers: the working copy and the baseline are large and only useful there.
_NOT_GATHERED = ("workspace", ".baseline.git")


class BatchTask(BaseModel):
    """One line of TASKS.jsonl."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    preset: Literal["code", "research"] = "code"
    task: str = Field(min_length=1)
    repo: str | None = None
    test_cmd: str | None = None
    setup_cmd: str | None = None  # code tasks: replaces the batch's --setup-cmd ("" for none)
    env: dict[str, str] = Field(default_factory=dict)  # code tasks: added to the batch's --env (the task's win)

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        problem = env_name_problem(env)  # a task line may not put a command into the sandbox's export line
        if problem:
            raise ValueError(problem)
        return env


class BatchSummary(BaseModel):
    total: int = 0
    finished: int = 0  # in a ledger, from this run or an earlier one
    ran: int = 0  # finished in this invocation
    skipped_done: int = 0  # already finished before (resume)
    not_started: int = 0  # left out because the cost budget was reached
    statuses: dict[str, int] = Field(default_factory=dict)
    tests_run: int = 0
    tests_passed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_stop: bool = False
    retry_next: int = 0  # finished with an error a re-run can fix: they run again next time

    @property
    def pass_rate(self) -> float | None:
        return self.tests_passed / self.tests_run if self.tests_run else None


def load_tasks(path: str | Path) -> list[BatchTask]:
    """Parse TASKS.jsonl; a bad line is a one-line ``ConfigError`` naming the line.

    A relative ``repo`` is relative to the folder of the tasks file, so a batch file can travel
    with the repos it names."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such file; pass a JSONL file with one task per line")
    tasks: list[BatchTask] = []
    for where, task in validated(jsonl_lines(path), BatchTask, "id", field="line", duplicate="task id"):
        if task.preset == "code" and not task.repo:
            raise ConfigError(f"{where}: task {task.id!r} is a code task without \"repo\"")
        if task.preset != "code" and (task.setup_cmd or task.env):
            raise ConfigError(f"{where}: task {task.id!r}: \"setup_cmd\" and \"env\" are for code tasks")
        if task.repo and not Path(task.repo).expanduser().is_absolute():  # relative to the tasks file
            task = task.model_copy(update={"repo": str((p.parent / task.repo).resolve())})
        tasks.append(task)
    return tasks


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as ``(I, N)``, with 1 <= I <= N; a ``ValueError`` that says what is wrong."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"{text!r} is not I/N, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise ValueError(f"{text!r}: I must be between 1 and N")
    return i, n


def in_shard(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """The share of ``items`` shard ``(I, N)`` runs: item k (from 0) is shard ``k % N + 1``'s."""
    if shard is None:
        return list(items)
    i, n = shard
    return list(items[i - 1::n])


def ledger_path(out: Path, shard: tuple[int, int] | None = None) -> Path:
    """The ledger a batch (or one shard of it) appends to."""
    return out / (RESULTS if shard is None else f"results.shard-{shard[0]}.jsonl")


class Ledgers:
    """Every ledger in a batch's output folder, read as they grow: ``results`` by task id (the
    first line of an id wins) and ``spent``, the cost they add up to. Only whole lines count: a
    line cut by a kill is that task's to run again, and one being written now is read next time."""

    def __init__(self, out: Path, retry_errors: bool = False) -> None:
        self.out = out
        self.retry_errors = retry_errors  # results marked "retry" count as not finished
        self.results: dict[str, dict[str, Any]] = {}
        self.spent = 0.0
        self._read_up_to: dict[Path, int] = {}

    def read(self) -> list[dict[str, Any]]:
        """Read what the ledgers gained since the last call; returns the results new to this reader."""
        new: list[dict[str, Any]] = []
        paths = sorted({*self.out.glob(RESULTS), *self.out.glob("results.shard-*.jsonl")})
        for path in paths:
            start = self._read_up_to.get(path, 0)
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read()
            data = data[:data.rfind(b"\n") + 1]
            self._read_up_to[path] = start + len(data)
            for line in data.splitlines():
                try:
                    result = json.loads(line)
                except ValueError:  # a line cut by a kill: that task runs again
                    continue
                if not (isinstance(result, dict) and isinstance(result.get("id"), str)):
                    continue
                old = self.results.get(result["id"])
                if old is not None and not old.get("retry"):  # the first finished line of an id wins
                    continue
                self.spent += float(result.get("cost_usd") or 0.0)  # a retried attempt's cost was spent too
                self.results[result["id"]] = result
                new.append(result)
        return new

    def finished(self, task_id: str) -> bool:
        """Whether the task needs no further run (with ``retry_errors``, a fixable error does)."""
        r = self.results.get(task_id)
        return r is not None and not (self.retry_errors and r.get("retry"))


def read_results(out: str | Path) -> list[dict[str, Any]]:
    """The finished tasks' results, from every ledger in ``out``."""
    return Ledgers(Path(out)).read()


def _drop_cut_line(path: Path) -> None:
    """Remove a last line cut short by a kill, so the next result starts on a line of its own."""
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def task_options(task: BatchTask, base: RunOptions, out: Path) -> RunOptions:
    """The single-run options of one batch task (the batch's shared flags + the task's fields)."""
    code = task.preset == "code"  # setup and env are for a repository's tasks
    return base.model_copy(update={
        "preset": task.preset, "task": task.task, "repo": task.repo, "test_cmd": task.test_cmd,
        "out": str(out / "tasks" / task.id), "run_id": task.id, "in_place": False,
        "setup_cmd": (base.setup_cmd if task.setup_cmd is None else task.setup_cmd or None) if code else None,
        "env": {**base.env, **task.env} if code else {},
    })


Runner = Callable[[RunOptions], Awaitable[dict[str, Any]]]


async def _local_runner(opts: RunOptions) -> dict[str, Any]:
    return await run_or_resume(opts)


# The error types (result.json's "error_type") a re-run can fix: the key or the credits (AuthError,
# PaymentRequired), a rate limit (RateLimited), the network or the server after the retries ran out
# (ModelError: refused connections, timeouts, 5xx), a setting fixed before the next run (ConfigError: a
# missing key, a bad repo path, an unknown model), the sandbox (SandboxError: Docker not running), the
# machine (OSError) and a crashed worker or a bug (InternalError). Not: BadRequest, ContextWindowExceeded
# (the same request fails again), ToolError, and an end the model caused (no type: malformed turns).
RETRY_TYPES = frozenset({"AuthError", "PaymentRequired", "RateLimited", "ModelError", "ConfigError", "SandboxError",
                         "OSError", "InternalError"})

# Ledgers written before results had "error_type": the message's words decide.
_FIXABLE = ("api key", "401", "403", "402", "credits", "rate limit", "429", "connect", "network", "dns",
            "name or service", "timed out", "timeout", "unreachable", "internal error", "not set")


def retryable(result: dict[str, Any]) -> bool:
    """Whether an errored task is one a re-run may fix, by its ``error_type`` (``RETRY_TYPES``). A
    result from before error types were recorded: it never got going (no step taken: a missing key,
    a bad path, a crashed worker) or its message names the key, the network or a rate limit."""
    if result.get("status") != "error":
        return False
    if "error_type" in result:
        return result["error_type"] in RETRY_TYPES
    if not int(result.get("steps") or 0):
        return True
    text = str(result.get("error") or "").lower()
    return any(word in text for word in _FIXABLE)


def error_type_of(err: BaseException) -> str:
    """The ``error_type`` recorded for a task whose run raised ``err``: the type the run ended with when
    the runner passed it on (a rejected key is reported as a ``ConfigError`` that names ``AuthError``),
    ``OSError`` for any of its kinds, ``InternalError`` for anything else (a bug, a crashed worker)."""
    if isinstance(err, AgentkitError):
        return str(err.details.get("error_type") or type(err).__name__)
    return "OSError" if isinstance(err, OSError) else "InternalError"


def _error_result(task: BatchTask, err: BaseException, kind: str | None = None) -> dict[str, Any]:
    return {"id": task.id, "preset": task.preset, "status": "error", "error": str(err) or type(err).__name__,
            "error_type": kind or error_type_of(err), "error_status": getattr(err, "status", None)
            or (err.details.get("error_status") if isinstance(err, AgentkitError) else None),
            "steps": 0, "tokens": {"prompt": 0, "completion": 0}, "cost_usd": 0.0, "test": None}


async def run_batch(tasks: list[BatchTask], base: RunOptions, out: str | Path, *, workers: int = 2,
                    max_cost: float | None = None, ray_address: str | None = None,
                    shard: tuple[int, int] | None = None,
                    on_result: Callable[[dict[str, Any]], None] | None = None,
                    runner: Runner | None = None, retry_errors: bool = True) -> BatchSummary:
    """Run ``tasks`` (with ``shard``, only its share of them) ``workers`` at a time into ``out``;
    returns the summary (also written to summary.json, or summary.shard-I.json)."""
    if workers < 1:
        raise ConfigError(f"workers={workers} must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if runner is None:
        runner = _ray_runner(ray_address) if ray_address else _local_runner
    tasks = in_shard(tasks, shard)
    ledgers = Ledgers(out, retry_errors)
    ledgers.read()
    todo = [t for t in tasks if not ledgers.finished(t.id)]
    path = ledger_path(out, shard)
    _drop_cut_line(path)
    ledger = open(path, "a", encoding="utf-8")
    queue = list(reversed(todo))

    async def worker() -> None:
        while queue:
            if max_cost is not None:
                ledgers.read()  # what every shard has spent so far
                if ledgers.spent >= max_cost:
                    return
            task = queue.pop()
            opts = task_options(task, base, out)
            if max_cost is not None:  # one task alone may not spend more than what is left
                opts = opts.model_copy(update={"max_cost": max_cost - ledgers.spent})
            try:
                result = await runner(opts)
            except (AgentkitError, OSError) as e:
                result = _error_result(task, e)
            except Exception as e:  # a bug in one task must not take the other tasks down with it
                result = _error_result(task, RuntimeError(f"internal error: {type(e).__name__}: {e}"),
                                       "InternalError")
            result = {**result, "id": task.id, "preset": task.preset}
            result["retry"] = retryable(result)
            ledger.write(json.dumps(result, ensure_ascii=False) + "\n")
            ledger.flush()
            if on_result:
                on_result(result)

    try:
        await asyncio.gather(*(worker() for _ in range(min(workers, max(1, len(todo))))))
    finally:
        ledger.close()
    ledgers.read()
    summary = _summarize(tasks, ledgers, skipped_done=len(tasks) - len(todo), max_cost=max_cost)
    _write_summary(out / (SUMMARY if shard is None else f"summary.shard-{shard[0]}.json"), summary)
    if shard is None:
        write_index(out, tasks, ledgers)
    return summary


def _summarize(tasks: list[BatchTask], ledgers: Ledgers, *, skipped_done: int,
               max_cost: float | None) -> BatchSummary:
    summary = BatchSummary(total=len(tasks), skipped_done=skipped_done)
    for task in tasks:
        r = ledgers.results.get(task.id)
        if r is None:
            summary.not_started += 1
            continue
        summary.finished += 1
        summary.retry_next += bool(r.get("retry"))
        status = str(r.get("status") or "error")
        summary.statuses[status] = summary.statuses.get(status, 0) + 1
        test = r.get("test")
        if isinstance(test, dict):
            summary.tests_run += 1
            summary.tests_passed += bool(test.get("passed"))
        tokens = r.get("tokens") or {}
        summary.prompt_tokens += int(tokens.get("prompt") or 0)
        summary.completion_tokens += int(tokens.get("completion") or 0)
        summary.cost_usd += float(r.get("cost_usd") or 0.0)
    summary.ran = summary.finished - skipped_done
    summary.cost_stop = bool(summary.not_started) and max_cost is not None and ledgers.spent >= max_cost
    return summary


def _write_summary(path: Path, summary: BatchSummary) -> None:
    path.write_text(json.dumps({**summary.model_dump(), "pass_rate": summary.pass_rate}, indent=2))


def summary_table(summary: BatchSummary) -> Any:
    """A rich table of the summary (status counts, pass rate, tokens, cost)."""
    from rich.table import Table

    table = Table(title="batch summary", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("tasks", str(summary.total))
    table.add_row("finished", f"{summary.finished} ({summary.ran} now, {summary.skipped_done} before)")
    for status, n in sorted(summary.statuses.items()):
        table.add_row(f"  {status}", str(n))
    if summary.not_started:
        table.add_row("not started (cost budget)", str(summary.not_started))
    if summary.tests_run:
        table.add_row("tests passed", f"{summary.tests_passed}/{summary.tests_run} ({summary.pass_rate:.0%})")
    table.add_row("tokens (prompt/completion)", f"{summary.prompt_tokens:,} / {summary.completion_tokens:,}")
    table.add_row("cost", f"${summary.cost_usd:.4f}")
    return table


def write_index(out: Path, tasks: list[BatchTask], ledgers: Ledgers) -> Path:
    """``OUT/index.html``: one row per task (status, tests, cost, steps, a link to its viewer page)."""
    esc = html.escape
    rows = []
    for task in tasks:
        r = ledgers.results.get(task.id) or {}
        status = str(r.get("status") or "not run") + (" (runs again)" if r.get("retry") else "")
        test = r.get("test")
        tests = ("passed" if test.get("passed") else "failed") if isinstance(test, dict) else ""
        cost = r.get("cost_usd")
        view = Path("tasks") / task.id / str((r.get("files") or {}).get("html") or "trajectory.html")
        link = (f'<a href="{esc(view.as_posix(), quote=True)}">view</a>' if (out / view).is_file() else "")
        error = f'<div class="err">{esc(str(r["error"]))}</div>' if r.get("error") else ""
        rows.append(f'<tr class="{esc(str(r.get("status") or "none"), quote=True)}"><td>{esc(task.id)}</td>'
                    f"<td>{esc(status)}{error}</td><td>{esc(tests)}</td>"
                    f"<td>{'' if cost is None or not r else esc(f'${float(cost):.4f}')}</td>"
                    f"<td>{esc(str(r.get('steps', '')))}</td><td>{link}</td><td>{esc(_clip(task.task, 120))}</td></tr>")
    page = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>agentkit batch</title><style>"
            "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
            ".done td:nth-child(2){color:green}.error td:nth-child(2){color:#b00}.err{font-size:smaller}"
            "</style></head><body>"
            f"<h1>batch {esc(out.name)}</h1><table><tr><th>task</th><th>status</th><th>tests</th><th>cost</th>"
            "<th>steps</th><th>view</th><th>task text</th></tr>" + "".join(rows) + "</table></body></html>\n")
    path = out / INDEX
    path.write_text(page, encoding="utf-8")
    return path


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


async def preflight(base: RunOptions) -> None:
    """One cheap request (a one-token completion) with the batch's model, key and endpoint, so a wrong
    key or an unreachable endpoint stops the batch before its first task; nothing for replay models.
    Raises ``ConfigError`` with the reason."""
    from agentkit.app.runner import DEFAULT_MODEL, build_model
    from agentkit.messages import UserMessage
    from agentkit.models.base import ModelSettings

    if (base.model or DEFAULT_MODEL).startswith("replay:"):
        return
    model = build_model(base)
    try:
        await model.complete([UserMessage(content="Reply with OK.")], None,
                             ModelSettings(max_tokens=1, thinking=False))
    except AgentkitError as e:
        raise ConfigError(f"preflight check of {base.model or DEFAULT_MODEL} failed, no task was started: {e} "
                          "(skip the check with --no-preflight)") from None
    finally:
        await model.aclose()


# -- shards in child processes ---------------------------------------------------------------------

def run_shards(argv: Sequence[str], tasks: list[BatchTask], out: str | Path, processes: int, *,
               max_cost: float | None = None, retry_errors: bool = True,
               on_result: Callable[[dict[str, Any]], None] | None = None) -> BatchSummary:
    """Run a batch as ``processes`` children ``agentkit ARGV --shard I/N``; sum up their ledgers.

    ``argv`` is this command's own arguments (``batch TASKS.jsonl ...``): each child runs its share
    of ``tasks`` quietly while this process waits and passes each result to ``on_result`` as it
    lands in a ledger. Ctrl-C is this process's alone (children ignore SIGINT): it sends each child
    one SIGTERM, which ends its runs as Ctrl-C would (cancelled, to resume), waits for them and
    raises ``KeyboardInterrupt``. On Linux a child gets that SIGTERM too when this process dies,
    even by SIGKILL. A child that stops otherwise (killed, out of memory) is not started again:
    its unfinished tasks wait for the next run of the same command, which resumes them."""
    if processes < 1:
        raise ConfigError(f"processes={processes} must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ledgers = Ledgers(out, retry_errors)
    ledgers.read()
    ids = {t.id for t in tasks}
    skipped_done = sum(ledgers.finished(t.id) for t in tasks)
    cmd = [sys.executable, "-m", "agentkit", *argv, "--out", str(out), "--quiet"]
    setup = _child_setup()
    children: list[subprocess.Popen[bytes]] = []

    def report() -> None:
        for r in ledgers.read():
            if on_result and r["id"] in ids:
                on_result(r)

    try:
        for i in range(1, processes + 1):
            children.append(subprocess.Popen([*cmd, "--shard", f"{i}/{processes}"], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, preexec_fn=setup))
        while any(c.poll() is None for c in children):
            time.sleep(0.1)
            report()
    except BaseException:  # Ctrl-C, or a child that could not start: stop the others once, let them finish
        for c in children:
            if c.poll() is None:
                c.terminate()
        for c in children:
            c.wait()
        raise
    report()
    summary = _summarize(tasks, ledgers, skipped_done=skipped_done, max_cost=max_cost)
    _write_summary(out / SUMMARY, summary)
    write_index(out, tasks, ledgers)
    stopped = [f"shard {i}/{processes} ({_exit_reason(c.returncode)})"
               for i, c in enumerate(children, 1) if c.returncode not in (0, 1)]
    if stopped:
        raise AgentkitError(f"{', '.join(stopped)} stopped before its tasks were done; "
                            "run the same command again to resume them")
    return summary


def _child_setup() -> Callable[[], None]:
    """What a shard child does between fork and exec: ignore SIGINT (Ctrl-C in a terminal reaches
    the whole process group; the parent alone answers it) and, on Linux, ask for SIGTERM when the
    parent dies, so that no shard goes on running tasks that a re-run would start again."""
    parent = os.getpid()
    prctl = None
    if sys.platform == "linux":
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not after the fork

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # stays ignored across exec; Python keeps it so
        if prctl is not None:
            prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before that took effect
            os._exit(1)

    return setup


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# -- Ray ---------------------------------------------------------------------------------------------

def _run_on_worker(opts_json: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Body of one Ray task: run into a temp folder on the worker, return the result and the files."""
    opts = RunOptions.model_validate_json(opts_json)
    tmp = Path(tempfile.mkdtemp(prefix="agentkit-ray-"))
    try:
        local = opts.model_copy(update={"out": str(tmp / "run"), "progress": "quiet"})
        try:
            result = asyncio.run(run_task(local))
        except AgentkitError as e:
            result = {"status": "error", "error": str(e), "error_type": error_type_of(e), "cost_usd": 0.0}
        files: dict[str, bytes] = {}
        root = tmp / "run"
        for path in root.rglob("*"):
            rel = path.relative_to(root)
            if path.is_file() and rel.parts[0] not in _NOT_GATHERED:
                files[str(rel)] = path.read_bytes()
        result["worker"] = os.uname().nodename
        return result, files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ray_runner(address: str) -> Runner:
    try:
        import ray
    except ImportError:
        raise ConfigError("ray_address=ADDRESS needs Ray: pip install 'agentkit[ray]'") from None
    started = not ray.is_initialized()
    if started:
        atexit.register(ray.shutdown)  # a cluster we started ends with this process
        try:
            if address in ("local", "auto-local"):
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"ray_address={address!r}: cannot connect to the Ray cluster ({e}); "
                              "start one with `ray start --head` or check the address") from None
    remote = ray.remote(num_cpus=1)(_run_on_worker)

    async def run(opts: RunOptions) -> dict[str, Any]:
        result, files = await remote.remote(opts.model_dump_json())
        dest = Path(opts.out or ".")
        if dest.exists():
            shutil.rmtree(dest)
        for rel, data in files.items():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        result["out"] = str(dest)
        return result

    return run
