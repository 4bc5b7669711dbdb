"""Batch runs: many tasks, N at a time, one sandbox and one folder per task.

``results.jsonl`` in the output folder is the ledger: one line per finished task, appended as each
finishes. Re-running the same batch skips the ids already in it, so a killed batch resumes where it
stopped. A global cost budget stops *launching* tasks once reached (running ones finish). With
``processes`` above 1 the tasks run in that many child interpreters (``agentkit.procpool``), so
hundreds of concurrent runs are not bound to the one core a Python process uses; this process
still hands out the tasks and alone writes the ledger. With ``ray`` set, each task is a Ray task
that brings up its own sandbox on the worker it lands on; its files come back to this machine so
the output folder looks the same as a local run's.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentkit.errors import AgentkitError, ConfigError
from agentkit.app.runner import RunOptions, run_or_resume, run_task
from agentkit.procpool import ProcessPool, WorkerDied

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
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


class BatchSummary(BaseModel):
    total: int = 0
    finished: int = 0  # in results.jsonl, this run or an earlier one
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
    seen: set[str] = set()
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            task = BatchTask.model_validate_json(line)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ())) or "line"
            raise ConfigError(f"{path}:{lineno}: {where}: {err['msg']}") from None
        if task.preset == "code" and not task.repo:
            raise ConfigError(f"{path}:{lineno}: task {task.id!r} is a code task without \"repo\"")
        if task.repo and not Path(task.repo).expanduser().is_absolute():  # relative to the tasks file
            task = task.model_copy(update={"repo": str((p.parent / task.repo).resolve())})
        if task.id in seen:
            raise ConfigError(f"{path}:{lineno}: duplicate task id {task.id!r}")
        seen.add(task.id)
        tasks.append(task)
    return tasks


def read_results(out: str | Path) -> list[dict[str, Any]]:
    path = Path(out) / RESULTS
    results: list[dict[str, Any]] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                results.append(json.loads(line))
            except ValueError:  # a line cut by a kill: that task runs again
                continue
    return results


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
    repo = task.repo
    return base.model_copy(update={
        "preset": task.preset, "task": task.task, "repo": repo, "test_cmd": task.test_cmd,
        "out": str(out / "tasks" / task.id), "run_id": task.id, "in_place": False,
    })


Runner = Callable[[RunOptions], Awaitable[dict[str, Any]]]


async def _local_runner(opts: RunOptions) -> dict[str, Any]:
    return await run_or_resume(opts)


def _error_result(task: BatchTask, err: BaseException) -> dict[str, Any]:
    return {"id": task.id, "preset": task.preset, "status": "error", "error": str(err) or type(err).__name__,
            "steps": 0, "tokens": {"prompt": 0, "completion": 0}, "cost_usd": 0.0, "test": None}


async def run_batch(tasks: list[BatchTask], base: RunOptions, out: str | Path, *, workers: int = 2,
                    max_cost: float | None = None, ray_address: str | None = None, processes: int = 1,
                    on_result: Callable[[dict[str, Any]], None] | None = None,
                    runner: Runner | None = None) -> BatchSummary:
    """Run ``tasks`` ``workers`` at a time into ``out``; returns the summary (also written to summary.json)."""
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if processes < 1:
        raise ConfigError("--processes must be at least 1")
    if processes > 1 and (ray_address or runner):
        raise ConfigError("--processes spreads tasks over this machine's cores and cannot be combined with "
                          "--ray (Ray places the tasks) or a custom runner")
    if processes > 1:
        async with ProcessPool("agentkit.batch:_run_in_child", processes) as pool:
            return await run_batch(tasks, base, out, workers=workers, max_cost=max_cost, on_result=on_result,
                                   runner=_process_runner(pool))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if runner is None:
        runner = _ray_runner(ray_address) if ray_address else _local_runner
    done = {r.get("id"): r for r in read_results(out)}
    todo = [t for t in tasks if t.id not in done]
    summary = BatchSummary(total=len(tasks), skipped_done=len(tasks) - len(todo))
    spent = sum(float(r.get("cost_usd") or 0.0) for r in done.values())
    _drop_cut_line(out / RESULTS)
    ledger = open(out / RESULTS, "a", encoding="utf-8")
    lock = asyncio.Lock()
    queue = list(reversed(todo))

    def budget_left() -> bool:
        return max_cost is None or spent < max_cost

    async def worker() -> None:
        nonlocal spent
        while True:
            async with lock:
                if not queue:
                    return
                if not budget_left():
                    summary.cost_stop = True
                    return
                task = queue.pop()
                opts = task_options(task, base, out)
                if max_cost is not None:  # one task alone may not spend more than what is left
                    opts = opts.model_copy(update={"max_cost": max_cost - spent})
            try:
                result = await runner(opts)
            except (AgentkitError, OSError) as e:
                result = _error_result(task, e)
            except Exception as e:  # a bug in one task must not take the other tasks down with it
                kind = getattr(e, "error_type", type(e).__name__)  # a child's bug keeps its own name
                result = _error_result(task, RuntimeError(f"internal error: {kind}: {e}"))
            result = {**result, "id": task.id, "preset": task.preset}
            async with lock:
                spent += float(result.get("cost_usd") or 0.0)
                ledger.write(json.dumps(result, ensure_ascii=False) + "\n")
                ledger.flush()
                done[task.id] = result
                summary.ran += 1
            if on_result:
                on_result(result)

    try:
        await asyncio.gather(*(worker() for _ in range(min(workers, max(1, len(todo))))))
    finally:
        ledger.close()
    summary.not_started = len(queue)
    if queue and not budget_left():
        summary.cost_stop = True
    ids = {t.id for t in tasks}
    for r in done.values():
        if r.get("id") not in ids:
            continue
        summary.finished += 1
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
    (out / SUMMARY).write_text(json.dumps({**summary.model_dump(), "pass_rate": summary.pass_rate}, indent=2))
    return summary


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


# -- child processes ---------------------------------------------------------------------------------

async def _run_in_child(opts: dict[str, Any]) -> dict[str, Any]:
    """One task in a ``--processes`` child; an error a user can act on comes back as data."""
    try:
        return {"result": await run_or_resume(RunOptions.model_validate(opts))}
    except (AgentkitError, OSError) as e:
        return {"error": str(e) or type(e).__name__}


def _process_runner(pool: ProcessPool) -> Runner:
    async def run(opts: RunOptions) -> dict[str, Any]:
        try:
            reply = await pool.submit(opts.model_dump(mode="json"))
        except WorkerDied:  # once more in a fresh child: the run resumes from its trajectory
            reply = await pool.submit(opts.model_dump(mode="json"))
        if "error" in reply:
            raise AgentkitError(reply["error"])
        return reply["result"]

    return run


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
            result = {"status": "error", "error": str(e), "cost_usd": 0.0}
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
        raise ConfigError("--ray needs Ray: pip install 'agentkit[ray]'") from None
    started = not ray.is_initialized()
    if started:
        atexit.register(ray.shutdown)  # a cluster we started ends with this process
        try:
            if address in ("local", "auto-local"):
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"--ray {address}: cannot connect to the Ray cluster ({e}); "
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
