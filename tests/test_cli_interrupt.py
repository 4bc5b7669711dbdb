"""Issue 14: Ctrl-C on `agentkit batch --processes 2` printed four tracebacks from the child
processes. Ctrl-C anywhere ends with one line that says how to resume, and loses nothing. (The
children are `agentkit batch --shard I/N` processes, each with its own ledger OUT/results.shard-I.jsonl.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures_cli import cli_env, write_jsonl

SLOW = "if [ -e FAST ]; then echo fast; else sleep 120; fi"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _ledger_lines(out: Path) -> list[dict]:
    return [row for path in sorted(out.glob("results*.jsonl")) for row in _records(path)]


def test_ctrl_c_on_a_process_batch_is_one_line_and_loses_nothing(tmp_path: Path, demo_repo: Path) -> None:
    fast = tmp_path / "fast-repo"
    shutil.copytree(demo_repo, fast)
    (fast / "FAST").write_text("")
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": SLOW})}]},
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "ok"})}]}])
    ids = {"f0": fast, "f1": fast, "s0": demo_repo, "s1": demo_repo}
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [{"id": i, "preset": "code", "task": f"task {i}", "repo": str(r)}
                                                   for i, r in ids.items()])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "agentkit", "batch", str(tasks), "--processes", "2", "--workers", "4",
           "--model", f"replay:{script}", "--out", str(out)]
    ledgers = out / "results*.jsonl"
    slow = [out / "tasks" / i / "trajectory.jsonl" for i in ("s0", "s1")]
    # its own process group, signalled as a whole as a terminal does on Ctrl-C
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            started = all(t.exists() and "sleep 120" in t.read_text() for t in slow)
            if started and len(_ledger_lines(out)) == 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)  # the slow commands are running
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr
    assert stderr.strip().splitlines() == [f"agentkit: interrupted; finished tasks are kept in {ledgers}; "
                                           "run the same command again to resume the rest"]
    # nothing lost: the finished tasks are in the ledger (whole lines), the others ended "cancelled"
    assert sorted(r["id"] for r in _ledger_lines(out)) == ["f0", "f1"]
    for t in slow:
        end = _records(t)[-1]
        assert end["type"] == "end" and end["status"] == "cancelled"

    again = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = _ledger_lines(out)
    assert sorted(r["id"] for r in rows) == sorted(ids) and all(r["status"] == "done" for r in rows)
    for t in slow:  # resumed in the same file, not started over
        records = _records(t)
        assert sum(r["type"] == "run" for r in records) == 1
        assert any(r["type"] == "event" and r.get("kind") == "resume" for r in records)


def test_ctrl_c_on_a_code_run_names_the_trajectory_to_resume(tmp_path: Path, demo_repo: Path) -> None:
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": "sleep 120"})}]}])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    runs = tmp_path / "data" / "agentkit" / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "agentkit", "code", "wait", "--repo", str(demo_repo),
                             "--model", f"replay:{script}", "--quiet"], cwd=cwd,
                            env=cli_env(PYTHONPATH=os.getcwd(), XDG_DATA_HOME=str(tmp_path / "data")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("sleep 120" in t.read_text()
                                                      for t in runs.glob("*/trajectory.jsonl")):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    (traj,) = runs.glob("*/trajectory.jsonl")  # the default runs folder, outside the repo and the cwd
    assert proc.returncode == 130
    assert stderr.strip().splitlines() == [f"agentkit: interrupted; continue with: agentkit resume "
                                           f"{traj}"]
