"""Fault injection: 100 agent runs at once through a fake server that misbehaves on purpose, and a
batch killed with SIGKILL then resumed.

The accounting is exact, not "roughly fine": every fault the servers injected must show up in a
trajectory as a retry, a fallback, or the error that ended a run, and every request the servers
answered properly must show up as one assistant message. A fault that vanished, a retry that
came from nowhere, a lost or cut trajectory, or an exception escaping a run fails the suite.
The servers inject at most a retry budget's worth of faults into any one call, so no transient
fault may end a run: all of them must end ``done`` (streams that broke after output included).
Backoffs and timeouts are shortened through the client's settings so the file stays fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentkit.agent import Agent, Limits
from agentkit.errors import ModelError
from agentkit.models.base import ModelSettings
from agentkit.models.fallback import Fallback
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.models.retry import Backoff
from agentkit.testing.server import Chaos, FakeServer, Reply
from agentkit.tools.base import tool
from agentkit.trajectory import Trajectory, read_records

pytestmark = pytest.mark.chaos

RUNS = 100
TOOL_STEPS = 2  # each run: two tool calls, then the answer
READ_TIMEOUT_S = 1.5  # client read timeout; chaos stalls last longer than this
REQUEST_TIMEOUT_S = 2.0  # whole-call deadline; keep-alive-only replies last longer than this
STALL_S = 3.0
PRIMARY_RETRIES, BACKUP_RETRIES = 1, 3
_RUN_RE = re.compile(r"\[\[run:(\d+)\]\]")


@tool(name="lookup")
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    return f"value-of-{key}"


def episode(request: dict[str, Any]) -> Reply:
    """The scripted model: the same episode for every run, keyed by the run number in its task."""
    body = request["json"]
    msgs = body["messages"]
    task = next(m["content"] for m in msgs if m["role"] == "user")
    run = _RUN_RE.search(task if isinstance(task, str) else json.dumps(task)).group(1)  # type: ignore[union-attr]
    step = sum(1 for m in msgs if m["role"] == "assistant")
    if step < TOOL_STEPS:
        return Reply(content=f"Step {step}: looking up a key for run {run}.",
                     tool_calls=[{"name": "lookup", "arguments": json.dumps({"key": f"r{run}-s{step}"})}])
    return Reply(content=f"answer-{run}")


def _model(name: str, srv: FakeServer, retries: int) -> OpenAICompatible:
    return OpenAICompatible(name, base_url=srv.base_url, api_key="sk-chaos-secret", timeout_s=READ_TIMEOUT_S,
                            connect_timeout_s=5.0, max_retries=retries,
                            settings=ModelSettings(request_timeout=REQUEST_TIMEOUT_S),
                            backoff=Backoff(base_s=0.005, max_s=0.02, max_retry_wait_s=1.0))


async def _one_run(i: int, primary: FakeServer, backup: FakeServer, out: Path) -> Any:
    # Each run has its own clients (as separate processes would): one shared pool would add
    # pool timeouts that no server injected.
    model = Fallback([_model("chaos-primary", primary, retries=PRIMARY_RETRIES),
                      _model("chaos-backup", backup, retries=BACKUP_RETRIES)])
    agent = Agent(model, [lookup], limits=Limits(max_steps=8), stream=(i % 2 == 1),
                  trajectory=out / f"run-{i:03d}.jsonl")
    try:
        return await agent.run(f"Look things up and answer. [[run:{i}]]")
    except ModelError as e:  # a run that failed raises, with its result on the error
        return e.result
    finally:
        await model.aclose()


def _owner(error: str) -> str | None:
    """Which model's fault ended a run, from the error line (it names the model)."""
    for name in ("chaos-primary", "chaos-backup"):
        if f"({name})" in error or name in error:
            return name
    return None


async def test_hundred_concurrent_runs_through_chaos(tmp_path: Path) -> None:
    from agentkit.deepseek.tokens import encoding

    encoding()  # load the token table now: a 0.3-2 s pause mid-run would look like a stalled server
    # Faults per call: the primary may use up all its attempts (so runs fall back), the backup
    # one fewer than its attempts, so every call is answered in the end.
    primary = FakeServer(responder=episode, chaos=Chaos(
        seed=7, rate_429=0.05, rate_429_retry_after=0.01, rate_5xx=0.06, rate_reset_before=0.04,
        rate_reset_during=0.04, rate_stall=0.02, rate_malformed=0.04, rate_error_chunk=0.04,
        rate_keepalive_only=0.015, keepalive_comments=True, stall_s=STALL_S, max_per_request=PRIMARY_RETRIES + 1))
    backup = FakeServer(responder=episode, chaos=Chaos(  # 429s here come without Retry-After
        seed=11, rate_429=0.15, rate_5xx=0.05, rate_reset_before=0.03, rate_reset_during=0.02,
        rate_malformed=0.02, rate_error_chunk=0.02, keepalive_comments=True, stall_s=STALL_S,
        max_per_request=BACKUP_RETRIES))
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: loop_errors.append(ctx))
    async with primary, backup:
        results = await asyncio.gather(*(_one_run(i, primary, backup, tmp_path) for i in range(RUNS)),
                                       return_exceptions=True)
        await asyncio.sleep(0.05)  # let aborted connections settle before counting

    # No exception escaped a run, and nothing was left unretrieved in the event loop.
    escaped = [r for r in results if isinstance(r, BaseException)]
    assert not escaped, escaped[:3]
    assert not loop_errors, loop_errors[:3]

    injected = {"chaos-primary": sum(primary.injected.values()), "chaos-backup": sum(backup.injected.values())}
    answered = {"chaos-primary": len(primary.requests) - injected["chaos-primary"],
                "chaos-backup": len(backup.requests) - injected["chaos-backup"]}
    assert injected["chaos-primary"] > 20 and injected["chaos-backup"] > 0, (primary.injected, backup.injected)
    # every kind of fault was exercised on the primary
    assert set(primary.injected) >= {"http", "reset_before", "reset_during", "stall", "malformed_chunk",
                                     "error_chunk", "keepalive_only"}, primary.injected

    retries: Counter[str] = Counter()
    discarded: Counter[str] = Counter()  # retries and fallbacks of streams that had shown output
    slowest = 0.0  # the longest answered call: it must stay well below REQUEST_TIMEOUT_S
    fallbacks: Counter[str] = Counter()
    ended_by: Counter[str] = Counter()
    messages_by_model: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for i, result in enumerate(results):
        path = tmp_path / f"run-{i:03d}.jsonl"
        raw = path.read_text(encoding="utf-8")
        assert raw.endswith("\n"), f"{path.name}: last line cut"
        records = [json.loads(line) for line in raw.splitlines()]  # every line is whole JSON
        assert records == read_records(path)
        assert records[0]["type"] == "run" and records[-1]["type"] == "end", path.name
        assert "sk-chaos-secret" not in raw, "the API key leaked into a trajectory"
        end = records[-1]
        assert end["status"] == result.status
        statuses[result.status] += 1
        traj = Trajectory.load(path)
        assert traj.status == result.status
        for rec in records:
            if rec["type"] == "event" and rec["kind"] in ("retry", "fallback"):
                (retries if rec["kind"] == "retry" else fallbacks)[rec["model"]] += 1
                discarded[rec["kind"]] += rec["discarded"]
                assert not rec["discarded"] or i % 2 == 1, (path.name, rec)  # only streams show output
                assert rec["kind"] == "retry" or rec["to_model"] == "chaos-backup"
            elif rec["type"] == "message" and rec["message"]["role"] == "assistant":
                messages_by_model[rec.get("model") or "?"] += 1
                slowest = max(slowest, rec["latency_s"])
        if result.status == "done":
            # the scripted episode, complete and in order: tool calls answered, then the answer
            assert result.answer == f"answer-{i}", (path.name, result)
            tool_results = [r for r in records if r["type"] == "tool_result"]
            assert [r["observation"]["text"] for r in tool_results] == \
                [f"value-of-r{i}-s{s}" for s in range(TOOL_STEPS)], path.name
            assert result.steps == TOOL_STEPS + 1
        else:
            # only a model failure may end a run, and it must say which model and what happened
            assert result.status == "error", (path.name, result)
            assert result.error and len(result.error.splitlines()) == 1, result.error
            owner = _owner(result.error)
            assert owner is not None, f"{path.name}: error does not name the model: {result.error}"
            ended_by[owner] += 1
            if i % 2 == 0:  # not streaming: only faults beyond the primary's retries AND the backup's end it
                assert any(r["type"] == "event" and r["kind"] == "fallback" for r in records), path.name
                assert owner == "chaos-backup", (path.name, result.error)

    print(f"\nchaos: {dict(statuses)}; injected primary={dict(primary.injected)} backup={dict(backup.injected)}; "
          f"retries={dict(retries)} fallbacks={dict(fallbacks)} discarded={dict(discarded)} "
          f"ended_by={dict(ended_by)} slowest answered call {slowest:.2f}s")
    # No transient fault ends a run: faults per call stay below the retry budget, so all runs end done.
    assert statuses == {"done": RUNS}, statuses
    assert discarded["retry"] > 0, "no stream was retried after it had shown output"
    # Exact accounting per server: each injected fault was retried, fallen back from, or ended a run.
    for name in ("chaos-primary", "chaos-backup"):
        assert retries[name] + fallbacks[name] + ended_by[name] == injected[name], \
            (name, dict(retries), dict(fallbacks), dict(ended_by), injected)
    # ... and each properly answered request became exactly one logged assistant message.
    assert dict(messages_by_model) == {k: v for k, v in answered.items() if v}, (messages_by_model, answered)


# --------------------------------------------------------------------------- kill -9 + resume

TASKS = 8


def _batch_responder(request: dict[str, Any]) -> Reply:
    body = request["json"]
    msgs = body["messages"]
    if not any(m["role"] == "assistant" for m in msgs):
        return Reply(content="Listing the files first.", tool_calls=[{"name": "bash",
                                                                      "arguments": json.dumps({"command": "ls"})}],
                     delay_s=0.25)
    return Reply(content="", tool_calls=[{"name": "submit", "arguments": json.dumps({"summary": "looked around"})}],
                 delay_s=0.25)


def _ledger_rows(out: Path, whole: bool = False) -> list[dict[str, Any]]:
    """The results in every ledger (results.jsonl, or one results.shard-I.jsonl per --processes
    child); a last line cut by the kill is left out (it may even end in "}", cut right after a
    nested object), unless ``whole`` says every line must be complete."""
    rows = []
    for ledger in sorted(out.glob("results*.jsonl")):
        lines = [line for line in ledger.read_text().splitlines() if line.strip()]
        for i, line in enumerate(lines):
            try:
                rows.append(json.loads(line))
            except ValueError:
                if whole or i != len(lines) - 1:
                    raise AssertionError(f"{ledger.name} line {i + 1} is not JSON: {line!r}") from None
    return rows


def _task_of(request: dict[str, Any]) -> str:
    text = json.dumps(request["json"]["messages"])
    m = re.search(r"chaos-task-(\d+)", text)
    assert m, "task marker missing from the request"
    return m.group(1)


@pytest.mark.parametrize("processes", [1, 2])
def test_kill_9_batch_then_resume_completes_each_task_once(tmp_path: Path, demo_repo: Path,
                                                           fake_server_thread: Any, processes: int) -> None:
    from tests.fixtures_cli import cli_env, write_jsonl

    srv = fake_server_thread(responder=_batch_responder)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"id": f"t{i}", "preset": "code", "task": f"Look around (chaos-task-{i}).", "repo": str(demo_repo),
         "test_cmd": "true"} for i in range(TASKS)])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "agentkit", "batch", str(tasks), "--workers", "2", "--quiet",
           "--processes", str(processes),
           "--provider", "openai-compatible", "--base-url", srv.base_url, "--model", "deepseek-v3.1",
           "--out", str(out)]

    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_ledger_rows(out)) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the batch finished before it could be killed: " + proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        try:  # the sandboxes' shells it started, if any outlived it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    killed_at = len(srv.requests)
    before = _ledger_rows(out)
    done_before = {r["id"] for r in before}
    assert 2 <= len(done_before) < TASKS, done_before

    again = subprocess.run([*cmd, "--json"], env=cli_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    try:
        summary = json.loads(again.stdout)
    except ValueError:
        raise AssertionError(f"--json printed more than JSON: {again.stdout!r}") from None
    rows = _ledger_rows(out, whole=True)
    ids = [r["id"] for r in rows]
    # every task completed exactly once: each id once in the ledger, all of them done
    assert sorted(ids) == sorted(f"t{i}" for i in range(TASKS)), ids
    assert len(ids) == len(set(ids))
    assert all(r["status"] == "done" for r in rows), rows
    assert summary["finished"] == TASKS and summary["skipped_done"] == len(done_before)
    assert summary["ran"] == TASKS - len(done_before)
    # tasks finished before the kill were not run again
    after = srv.requests[killed_at:]
    rerun = {f"t{_task_of(r)}" for r in after if r["path"].endswith("/chat/completions")
             and r["json"].get("max_tokens") != 1}  # not the batch's one-token preflight
    assert not (rerun & done_before), rerun & done_before
    # every task's folder holds one complete trajectory that ended with "done"
    for i in range(TASKS):
        traj = out / "tasks" / f"t{i}" / "trajectory.jsonl"
        records = read_records(traj)
        assert records[0]["type"] == "run" and records[-1]["type"] == "end", traj
        assert records[-1]["status"] == "done"
        assert sum(1 for r in records if r["type"] == "run") == 1
