"""`agentkit batch`: N workers, per-task folders, the ledgers + summary, resume by skipping finished
tasks, the global cost budget, and shards (`--shard I/N`, `--processes N`) — end to end against the
fake server, in subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit import demo
from agentkit.app.batch import BatchTask, in_shard, load_tasks, parse_shard
from agentkit.errors import ConfigError
from agentkit.testing.server import Reply
from tests.fixtures_cli import cli_env, run_cli, write_jsonl

SUBMIT = Reply(content="", tool_calls=[{"name": "submit", "arguments": json.dumps({"summary": "nothing to change"})}],
               usage={"prompt_tokens": 1000, "completion_tokens": 50, "cost": 0.4})


def _tasks(tmp_path: Path, repo: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        row = {"id": f"t{i}", "preset": "code", "task": f"task {i}", "repo": str(repo),
               "test_cmd": demo.TEST_CMD if i % 2 == 0 else "true"}
        rows.append(row)
    return write_jsonl(tmp_path / "tasks.jsonl", rows)


def _results(out: Path) -> list[dict]:
    """Every line of every ledger (results.jsonl, results.shard-I.jsonl), duplicates included."""
    return [json.loads(line) for path in sorted(out.glob("results*.jsonl")) for line in path.read_text().splitlines()]


def test_batch_cost_stop_then_resume(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    srv = fake_server_thread(responder=lambda request: SUBMIT)
    tasks = _tasks(tmp_path, demo_repo, 5)
    out = tmp_path / "out"
    common = ["--provider", "openai-compatible", "--base-url", srv.base_url, "--model", "deepseek-v3.1",
              "--price", "1,1", "--out", str(out)]
    # one worker: $0.4 per task, budget $1 -> tasks 1-3 run (0.4, 0.8 < 1), then launching stops
    proc = run_cli("batch", str(tasks), "--workers", "1", "--max-cost", "1.0", *common)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cost budget $1.0 reached: 2 task(s) not started" in proc.stdout
    first = _results(out)
    assert [r["id"] for r in first] == ["t0", "t1", "t2"]
    assert all(r["status"] == "done" for r in first)
    assert [r["cost_usd"] for r in first] == pytest.approx([0.4, 0.4, 0.4])
    for r in first:  # one folder per task with its own trajectory and patch
        folder = out / "tasks" / r["id"]
        assert (folder / "trajectory.jsonl").is_file() and (folder / "result.json").is_file()
        assert (folder / "patch.diff").read_text() == ""
    # each task may spend at most what was left of the budget when it started
    limits = [json.loads((out / "tasks" / t / "trajectory.jsonl").read_text().splitlines()[0])["limits"]["max_cost_usd"]
              for t in ("t0", "t1", "t2")]
    assert limits == pytest.approx([1.0, 0.6, 0.2])
    # the bug is still there: the demo test command fails, `true` passes
    assert [r["test"]["passed"] for r in first] == [False, True, False]

    # same command with a bigger budget: the three finished tasks are skipped, two more run
    proc = run_cli("batch", str(tasks), "--workers", "2", "--max-cost", "10", "--json", *common)
    summary = json.loads(proc.stdout)
    assert summary["ran"] == 2 and summary["skipped_done"] == 3 and summary["finished"] == 5
    assert summary["statuses"] == {"done": 5} and summary["not_started"] == 0 and not summary["cost_stop"]
    assert summary["tests_run"] == 5 and summary["tests_passed"] == 2 and summary["pass_rate"] == pytest.approx(0.4)
    assert summary["cost_usd"] == pytest.approx(2.0)
    assert summary["prompt_tokens"] == 5000 and summary["completion_tokens"] == 250
    assert sorted(r["id"] for r in _results(out)) == ["t0", "t1", "t2", "t3", "t4"]
    assert json.loads((out / "summary.json").read_text())["finished"] == 5
    assert proc.returncode == 1  # some tests failed
    # 5 tasks x 1 model call each reached the server, nothing re-ran
    assert len([r for r in srv.requests if r["path"].endswith("/chat/completions")
                and (r["json"] or {}).get("max_tokens") != 1]) == 5  # the preflight asks for one token

    # a third run has nothing left to do
    proc = run_cli("batch", str(tasks), "--max-cost", "10", *common)
    assert "5 (0 now, 5 before)" in proc.stdout


@pytest.mark.parametrize("processes", [1, 2])
def test_batch_parallel_workers_with_replay_fix_everything(tmp_path: Path, demo_repo: Path, processes: int) -> None:
    tasks = _tasks(tmp_path, demo_repo, 3)
    out = tmp_path / "out"
    proc = run_cli("batch", str(tasks), "--workers", "3", "--processes", str(processes),
                   "--model", f"replay:{demo.CODE_SCRIPT}", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {r["id"]: r for r in _results(out)}
    assert set(results) == {"t0", "t1", "t2"}
    assert all(r["status"] == "done" and r["test"]["passed"] for r in results.values())
    for tid in results:  # each task had its own working copy and sandbox
        assert "ordered[middle - 1]" in (out / "tasks" / tid / "patch.diff").read_text()
    assert "tests passed" in proc.stdout and "3/3 (100%)" in proc.stdout
    assert "return ordered[middle]\n" in (demo_repo / "textstats" / "stats.py").read_text()


def test_batch_research_tasks_and_failures_are_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with demo.research_site(tmp_path / "site") as site:
        tasks = write_jsonl(tmp_path / "tasks.jsonl", [
            {"id": "q1", "preset": "research", "task": demo.QUESTION},
            {"id": "q2", "preset": "research", "task": demo.QUESTION},
        ])
        proc = run_cli("batch", str(tasks), "--model", f"replay:{site['script']}",
                       "--search-backend", f"fixture:{site['search_fixture']}", "--out", str(out), "--json")
    # fetch of 127.0.0.1 is refused without an allow-list: the agent is told, keeps going, and finishes
    assert proc.returncode == 0, proc.stderr
    results = {r["id"]: r for r in _results(out)}
    assert all(r["status"] == "done" for r in results.values())
    assert "[citation:1]" in (out / "tasks" / "q1" / "answer.md").read_text()
    traj = [json.loads(line) for line in (out / "tasks" / "q2" / "trajectory.jsonl").read_text().splitlines()]
    fetches = [r for r in traj if r["type"] == "tool_result" and r["name"] == "fetch"]
    assert fetches and all(r["observation"]["is_error"] for r in fetches)


def test_load_tasks_validates(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "task": "x", "repo": "."},
                                               {"id": "b", "preset": "research", "task": "y"}])
    with path.open("a") as fh:
        fh.write("\n# a comment line\n")
    # a relative repo is relative to the tasks file's folder
    assert load_tasks(path) == [BatchTask(id="a", task="x", repo=str(tmp_path)),
                                BatchTask(id="b", preset="research", task="y")]
    write_jsonl(path, [{"id": "a", "task": "x", "repo": "."}, {"id": "a", "task": "y", "repo": "."}])
    with pytest.raises(ConfigError, match="t.jsonl:2: duplicate task id 'a'"):
        load_tasks(path)
    write_jsonl(path, [{"id": "../evil", "task": "x", "repo": "."}])
    with pytest.raises(ConfigError, match="t.jsonl:1: id"):
        load_tasks(path)
    write_jsonl(path, [{"id": "a", "task": "x", "repo": ".", "extra": 1}])
    with pytest.raises(ConfigError, match="extra"):
        load_tasks(path)


def test_a_result_line_cut_by_a_kill_is_dropped_before_appending(tmp_path):
    from agentkit.app.batch import RESULTS, _drop_cut_line, read_results

    ledger = tmp_path / RESULTS
    ledger.write_text('{"id": "a", "status": "done"}\n{"id": "b", "sta')
    _drop_cut_line(ledger)
    with open(ledger, "a", encoding="utf-8") as fh:
        fh.write('{"id": "b", "status": "done"}\n')
    assert [r["id"] for r in read_results(tmp_path)] == ["a", "b"]


def _children_of(pid: int) -> list[int]:
    kids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            kids.append(int(status.parent.name))
    return kids


def test_a_shard_killed_mid_task_leaves_the_task_to_the_next_run(tmp_path: Path, demo_repo: Path,
                                                                  fake_server_thread) -> None:
    """--processes: a shard child killed mid-task is reported in one line (no restart); the same
    command again resumes the task from its trajectory, and it is in the ledgers once, done."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.fixtures_cli import cli_env

    state: dict[str, object] = {"batch": None, "killed": []}

    def responder(request: dict) -> Reply:
        if not state["killed"]:  # the first model call: kill the shard that is making it
            batch = state["batch"]
            assert isinstance(batch, subprocess.Popen)
            pids = _children_of(batch.pid)
            state["killed"] = pids
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        return SUBMIT

    srv = fake_server_thread(responder=responder)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [{"id": "t0", "preset": "code", "task": "look", "repo": str(demo_repo),
                                                    "test_cmd": "true"}])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "agentkit", "batch", str(tasks), "--workers", "1", "--processes", "2", "--json",
           "--provider", "openai-compatible", "--base-url", srv.base_url, "--model", "deepseek-v3.1", "--out", str(out)]
    batch = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state["batch"] = batch
    stdout, stderr = batch.communicate(timeout=240)
    assert batch.returncode == 1 and state["killed"], stdout + stderr
    assert stderr.strip().splitlines()[-1].startswith("agentkit: error: shard 1/2 (killed by SIGKILL)")
    assert stderr.strip().endswith("stopped before its tasks were done; run the same command again to resume them")
    assert _results(out) == []

    again = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [(r["id"], r["status"]) for r in _results(out)] == [("t0", "done")]
    records = [json.loads(line) for line in (out / "tasks" / "t0" / "trajectory.jsonl").read_text().splitlines()]
    assert sum(r["type"] == "run" for r in records) == 1  # resumed, not started over
    assert any(r.get("kind") == "resume" for r in records if r["type"] == "event")
    assert json.loads(again.stdout)["statuses"] == {"done": 1}


def test_shards_split_the_tasks_by_a_stable_rule() -> None:
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "1", "a/b", "1/2/3"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    items = list(range(7))
    shares = [in_shard(items, (i, 3)) for i in (1, 2, 3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert in_shard(items, None) == items


def test_a_shard_reads_every_ledger_for_the_cost_budget(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    """Another shard's ledger counts: with $0.8 of the $1 budget spent there, shard 1/2 starts one
    task (allowed the $0.2 left), and none after it; it writes its own ledger and summary."""
    srv = fake_server_thread(responder=lambda request: SUBMIT)
    tasks = _tasks(tmp_path, demo_repo, 4)  # shard 1/2: t0, t2; shard 2/2: t1, t3
    out = tmp_path / "out"
    out.mkdir()
    write_jsonl(out / "results.shard-2.jsonl", [  # as if shard 2/2 had run t1 already
        {"id": "t1", "preset": "code", "status": "done", "steps": 1, "cost_usd": 0.8, "test": None}])
    unpriced = run_cli("batch", str(tasks), "--shard", "1/2", "--max-cost", "1.0", "--provider", "openai-compatible",
                       "--base-url", srv.base_url, "--model", "deepseek-v3.1", "--out", str(out))
    assert unpriced.returncode == 2 and "--max-cost needs a price" in unpriced.stderr  # refused before any task
    assert not (out / "results.shard-1.jsonl").exists()
    proc = run_cli("batch", str(tasks), "--shard", "1/2", "--workers", "1", "--max-cost", "1.0", "--json",
                   "--provider", "openai-compatible", "--base-url", srv.base_url, "--model", "deepseek-v3.1",
                   "--price", "1,1", "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["total"] == 2 and summary["ran"] == 1 and summary["not_started"] == 1 and summary["cost_stop"]
    assert [r["id"] for r in map(json.loads, (out / "results.shard-1.jsonl").read_text().splitlines())] == ["t0"]
    assert json.loads((out / "summary.shard-1.json").read_text())["ran"] == 1
    header = json.loads((out / "tasks" / "t0" / "trajectory.jsonl").read_text().splitlines()[0])
    assert header["limits"]["max_cost_usd"] == pytest.approx(0.2)


def test_bad_process_settings_are_usage_errors(tmp_path: Path) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [{"id": "q", "preset": "research", "task": "x"}])
    proc = run_cli("batch", str(tasks), "--processes", "0", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "--processes must be at least 1" in proc.stderr
    proc = run_cli("batch", str(tasks), "--processes", "2", "--ray", "local", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "cannot be combined with --ray" in proc.stderr
    proc = run_cli("batch", str(tasks), "--shard", "3/2", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "I must be between 1 and N" in proc.stderr


def test_a_task_resumed_by_the_batch_keeps_the_batch_quiet(tmp_path: Path, demo_repo: Path) -> None:
    """A task folder holding an unfinished run is resumed from its trajectory; the resumed run
    must use the batch's progress setting (quiet), not the default: its step lines once landed
    in the middle of `--json` output (the saved options leave display settings out)."""
    out = tmp_path / "out"
    first = run_cli("code", "task 0", "--repo", str(demo_repo), "--model", f"replay:{demo.CODE_SCRIPT}",
                    "--max-steps", "2", "--out", str(out / "tasks" / "t0"), "--quiet")
    assert first.returncode == 1, first.stderr  # stopped by the step limit: left to resume
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [{"id": "t0", "preset": "code", "task": "task 0",
                                                    "repo": str(demo_repo), "test_cmd": "true"}])
    proc = run_cli("batch", str(tasks), "--model", f"replay:{demo.CODE_SCRIPT}", "--out", str(out), "--json")
    summary = json.loads(proc.stdout)  # nothing but the summary on stdout
    assert summary["ran"] == 1 and summary["finished"] == 1
    records = [json.loads(line) for line in (out / "tasks" / "t0" / "trajectory.jsonl").read_text().splitlines()]
    assert any(r["type"] == "event" and r.get("kind") == "resume" for r in records)  # resumed, not restarted
    assert sum(r["type"] == "run" for r in records) == 1


def test_fixable_errors_run_again_with_todays_options(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    """A task that failed on the endpoint (here: nothing listens) is retried by the next run, which uses
    that run's --base-url; --no-retry-errors keeps it finished. The index page lists every task."""
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"id": "a", "preset": "code", "task": "do <b>it</b>", "repo": str(demo_repo)},
        {"id": "b<x>", "preset": "code", "task": "t", "repo": str(tmp_path / "missing")}][:1])
    out = tmp_path / "out"
    dead = ["--provider", "openai-compatible", "--base-url", "http://127.0.0.1:9/v1", "--model", "deepseek-v3.1",
            "--request-timeout", "2", "--out", str(out), "--no-preflight"]
    env = cli_env(AGENTKIT_API_KEY="sk-test")
    proc = run_cli("batch", str(tasks), *dead, env=env, timeout=300)
    assert proc.returncode == 1
    first = _results(out)
    assert first[0]["status"] == "error" and first[0]["retry"] is True
    assert "1 task(s) ended in an error a re-run can fix" in proc.stdout
    proc = run_cli("batch", str(tasks), *dead, "--no-retry-errors", "--json", env=env)
    assert json.loads(proc.stdout)["ran"] == 0 and len(_results(out)) == 1
    srv = fake_server_thread(responder=lambda request: SUBMIT)
    proc = run_cli("batch", str(tasks), "--provider", "openai-compatible", "--base-url", srv.base_url, "--model",
                   "deepseek-v3.1", "--out", str(out), "--json", env=env)
    summary = json.loads(proc.stdout)
    assert summary["ran"] == 1 and summary["statuses"] == {"done": 1} and summary["retry_next"] == 0
    assert [r["status"] for r in _results(out)] == ["error", "done"]  # the new line replaces the old one
    page = (out / "index.html").read_text()
    assert 'href="tasks/a/trajectory.html"' in page and "done" in page and "$0.4000" in page
    task_page = (out / "tasks" / "a" / "trajectory.html").read_text()  # and back, to OUT/index.html
    assert '<a href="../../index.html">' in task_page
    assert "<b>it</b>" not in page and "do &lt;b&gt;it&lt;/b&gt;" in page  # escaped


def test_preflight_stops_a_batch_with_a_rejected_key(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    from agentkit.testing.server import Fault

    srv = fake_server_thread(responder=lambda request: Fault(status=401, body={"error": {"message": "bad key"}}))
    tasks = _tasks(tmp_path, demo_repo, 3)
    out = tmp_path / "out"
    proc = run_cli("batch", str(tasks), "--provider", "openai-compatible", "--base-url", srv.base_url,
                   "--model", "deepseek-v3.1", "--out", str(out), env=cli_env(AGENTKIT_API_KEY="sk-test"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("agentkit: error: preflight check")
    assert _results(out) == [] and not (out / "tasks").exists()
    assert len(srv.requests) == 1
    # replay models need no check
    proc = run_cli("batch", str(tasks), "--model", f"replay:{demo.CODE_SCRIPT}", "--out", str(tmp_path / "o2"))
    assert proc.returncode == 0, proc.stderr
