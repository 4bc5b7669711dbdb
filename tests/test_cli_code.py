"""`agentkit code` end to end in subprocesses: with the replay model, with the fake HTTP server,
in place, with --confirm, and stopped by a limit then resumed."""

from __future__ import annotations

import json
from pathlib import Path

from agentkit import demo
from tests.fixtures_cli import cli_env, run_cli, write_jsonl

FIX_OLD = "    middle = len(ordered) // 2\n    return ordered[middle]\n"
FIX_NEW = ("    middle = len(ordered) // 2\n    if len(ordered) % 2 == 0:\n"
           "        return (ordered[middle - 1] + ordered[middle]) / 2\n    return ordered[middle]\n")


def _call(name: str, **args: object) -> dict:
    return {"name": name, "arguments": json.dumps(args)}


def _turns() -> list[dict]:
    """Assistant turns that fix the demo repo (short form understood by Replay and the fake server)."""
    return [
        {"content": "Run the tests first.", "tool_calls": [_call("bash", command="python3 -m unittest discover -s tests 2>&1 | tail -3")]},
        {"content": "Fix median.", "tool_calls": [_call("str_replace_editor", command="str_replace",
                                                         path="textstats/stats.py", old_str=FIX_OLD, new_str=FIX_NEW)]},
        {"content": "Check again.", "tool_calls": [_call("bash", command="python3 -m unittest discover -s tests 2>&1 | tail -3")]},
        {"content": "", "tool_calls": [_call("submit", summary="median fixed for even lengths")]},
    ]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]


def test_code_with_replay_model_writes_all_outputs(tmp_path: Path, demo_repo: Path) -> None:
    script = write_jsonl(tmp_path / "script.jsonl", _turns())
    issue = tmp_path / "issue.md"
    issue.write_text("median() is wrong for even-length lists; make the tests pass.\n")
    out = tmp_path / "out"
    proc = run_cli("code", f"@{issue}", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--test-cmd", demo.TEST_CMD, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # --json: stdout is exactly result.json (progress went to stderr)
    assert result == {**json.loads((out / "result.json").read_text()), "out": str(out)}
    assert result["status"] == "done" and result["steps"] == 4
    assert result["answer"] == "median fixed for even lengths"
    assert result["test"]["passed"] is True
    assert result["tokens"]["total"] > 0 and result["cost_usd"] == 0.0
    assert "bash: python3 -m unittest" in proc.stderr
    assert "return (ordered[middle - 1] + ordered[middle]) / 2" in (out / "patch.diff").read_text()
    # the user's repo is untouched: the agent worked on out/workspace, removed once the run ended done
    assert "return ordered[middle]\n" in (demo_repo / "textstats" / "stats.py").read_text()
    assert not (out / "workspace").exists() and not (out / ".baseline.git").exists()
    run = _records(out)[0]
    assert run["task"].startswith("median() is wrong")  # @file was read
    assert run["thinking"] is False and run["require_submit"] is True
    assert [t["function"]["name"] for t in run["tools"]] == ["bash", "str_replace_editor", "submit"]
    assert run["options"]["test_cmd"] == demo.TEST_CMD and run["options"]["repo"] == str(demo_repo)


def test_code_against_the_fake_server(tmp_path: Path, demo_repo: Path, server_process) -> None:
    base_url = server_process([{"reply": t} for t in _turns()])
    out = tmp_path / "out"
    proc = run_cli("code", "Fix median() for even-length lists.", "--repo", str(demo_repo),
                   "--provider", "openai-compatible", "--base-url", base_url, "--model", "deepseek-v3.1",
                   "--test-cmd", demo.TEST_CMD, "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == f"done: {out}\n"  # --quiet and no --json: only the status and the run folder
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "done" and result["test"]["passed"] is True
    assert result["provider"] == "openai-compatible" and result["model"] == "deepseek-v3.1"
    records = _records(out)
    msgs = [r["message"] for r in records if r["type"] == "message"]
    assert msgs[0]["role"] == "system" and "submit" in msgs[0]["content"]
    # the second request carried the real bash output of the first call back to the server
    outputs = [r["observation"]["text"] for r in records if r["type"] == "tool_result" and r["name"] == "bash"]
    assert "FAILED" in outputs[0] and "OK" in outputs[1]


def test_code_in_place_edits_the_repo_itself(tmp_path: Path, demo_repo: Path) -> None:
    script = write_jsonl(tmp_path / "script.jsonl", _turns())
    out = tmp_path / "out"
    proc = run_cli("code", "fix median", "--repo", str(demo_repo), "--in-place", "--model", f"replay:{script}",
                   "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "ordered[middle - 1]" in (demo_repo / "textstats" / "stats.py").read_text()
    assert not (out / "workspace").exists()
    assert "ordered[middle - 1]" in (out / "patch.diff").read_text()


def _answer_on_a_terminal(args: list[str], answers: list[bytes], prompt: bytes = b"[s]top the run") -> tuple[int, str]:
    """``agentkit ARGS`` with a pseudo-terminal as stdin (``--confirm`` needs one), answering each
    question with the next of ``answers``; the exit code and everything it printed."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from tests.fixtures_cli import cli_env

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agentkit", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=cli_env(TERM="dumb"))
    os.close(slave)
    out, given, deadline = b"", 0, time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None and not select.select([master], [], [], 0.1)[0]:
            break
        if select.select([master], [], [], 0.2)[0]:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            out += data
        if out.count(prompt) > given and given < len(answers):
            os.write(master, answers[given])
            given += 1
    rc = proc.wait(timeout=10)
    os.close(master)
    return rc, out.decode("utf-8", "replace")


def test_confirm_asks_before_each_shell_command(tmp_path: Path, demo_repo: Path) -> None:
    turns = [
        {"content": "", "tool_calls": [_call("bash", command="touch refused-marker")]},
        {"content": "", "tool_calls": [_call("bash", command="touch allowed-marker")]},
        {"content": "", "tool_calls": [_call("submit", summary="done")]},
    ]
    script = write_jsonl(tmp_path / "script.jsonl", turns)
    out = tmp_path / "out"
    rc, screen = _answer_on_a_terminal(["code", "make markers", "--repo", str(demo_repo), "--model",
                                        f"replay:{script}", "--confirm", "--keep-workspace", "--out", str(out)],
                                       [b"n\n", b"y\n"])
    assert rc == 0, screen
    assert screen.count("[s]top the run") == 2 and "touch refused-marker" in screen
    assert not (out / "workspace" / "refused-marker").exists()
    assert (out / "workspace" / "allowed-marker").exists()
    results = [r for r in _records(out) if r["type"] == "tool_result" and r["name"] == "bash"]
    assert results[0]["observation"]["is_error"] is True
    assert "declined" in results[0]["observation"]["text"]
    assert not results[1]["observation"].get("is_error")


def test_limit_then_resume_finishes_the_run(tmp_path: Path, demo_repo: Path) -> None:
    script = write_jsonl(tmp_path / "script.jsonl", _turns())
    out = tmp_path / "out"
    proc = run_cli("code", "fix median", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--test-cmd", demo.TEST_CMD, "--max-steps", "2", "--out", str(out), "--quiet")
    assert proc.returncode == 1, proc.stderr  # a limit is a failed run
    first = json.loads((out / "result.json").read_text())
    assert first["status"] == "limit" and first["steps"] == 2
    assert first["test"]["passed"] is True  # the fix landed in step 2, tests ran at the stop

    proc = run_cli("resume", str(out / "trajectory.jsonl"), "--max-steps", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "done" and result["steps"] == 4
    assert result["answer"] == "median fixed for even lengths"
    from agentkit.sandboxes.local import bwrap_available

    if bwrap_available():  # the trajectory's own test command runs only in an isolated sandbox
        assert result["test"]["passed"] is True
    else:
        assert result["test"] is None and "repeat --test-cmd" in proc.stderr
    # one trajectory holds both sessions, with the resume event between them
    records = _records(out)
    assert [r["type"] for r in records].count("run") == 1
    assert any(r["type"] == "event" and r.get("kind") == "resume" for r in records)
    assert "ordered[middle - 1]" in (out / "patch.diff").read_text()


def test_killed_run_resumes_from_its_trajectory(tmp_path: Path, demo_repo: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.fixtures_cli import cli_env

    turns = [
        {"content": "Wait for the signal file.", "tool_calls": [_call("bash", command="while [ ! -e go ]; do sleep 0.1; done; echo released")]},
        {"content": "", "tool_calls": [_call("submit", summary="released")]},
    ]
    script = write_jsonl(tmp_path / "script.jsonl", turns)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "agentkit", "code", "wait", "--repo", str(demo_repo),
                             "--model", f"replay:{script}", "--out", str(out), "--quiet"],
                            env=cli_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    traj = out / "trajectory.jsonl"
    try:
        while proc.poll() is None and not (traj.exists() and "while [ ! -e go ]" in traj.read_text()):
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its shell and the waiting command
    finally:
        proc.wait(timeout=30)
    assert not (out / "result.json").exists()
    records = _records(out)
    assert records[-1]["type"] == "message" and records[-1]["message"]["tool_calls"]

    (out / "workspace" / "go").write_text("")
    done = run_cli("resume", str(traj), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "done" and result["answer"] == "released"
    bash_results = [r for r in _records(out) if r["type"] == "tool_result" and r["name"] == "bash"]
    # the command cut off by the kill is not run again: the model is told its effects are unknown
    assert len(bash_results) == 1 and bash_results[0]["observation"]["is_error"] is True
    assert "interrupted" in bash_results[0]["observation"]["text"]


def test_failing_tests_make_exit_code_1(tmp_path: Path, demo_repo: Path) -> None:
    script = write_jsonl(tmp_path / "script.jsonl", [  # the agent leaves its shell in a subfolder
        {"content": "", "tool_calls": [_call("bash", command="cd textstats && pwd")]},
        {"content": "", "tool_calls": [_call("submit", summary="no change")]}])
    out = tmp_path / "out"
    proc = run_cli("code", "do nothing", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--test-cmd", demo.TEST_CMD, "--out", str(out))
    assert proc.returncode == 1
    assert "tests: FAILED (exit 1)" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "done" and result["test"]["passed"] is False
    assert "FAILED (failures=1)" in result["test"]["output"]  # ran from the repo root all the same
    assert (out / "patch.diff").read_text() == ""


def test_thinking_flag_overrides_the_preset(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    from agentkit.testing.server import Reply

    srv = fake_server_thread([Reply(tool_calls=[_call("submit", summary="ok")])])
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--provider", "sglang", "--base-url", srv.base_url,
                   "--model", "deepseek-ai/DeepSeek-V3.1", "--thinking", "--out", str(tmp_path / "o"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    run = _records(tmp_path / "o")[0]
    assert run["thinking"] is True and run["settings"]["thinking"] is True
    assert srv.requests[0]["json"]["chat_template_kwargs"] == {"thinking": True}


def test_default_repo_and_out_inside_it(tmp_path: Path, demo_repo: Path) -> None:
    """`agentkit code TASK` in the repo itself: --repo defaults to ".", the run folder goes to the
    per-user data folder (never inside the repo, printed at start); with --out inside the repo neither
    the copy nor the patch may include it."""
    script = write_jsonl(tmp_path / "script.jsonl", _turns())
    env = cli_env(XDG_DATA_HOME=str(tmp_path / "data"))
    proc = run_cli("code", "fix median", "--model", f"replay:{script}", "--quiet", cwd=demo_repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (demo_repo / "runs").exists()
    (run,) = (tmp_path / "data" / "agentkit" / "runs").iterdir()
    assert run.name.endswith("-fix-median") and f"run folder: {run}" in proc.stdout
    assert "ordered[middle - 1]" in (run / "patch.diff").read_text()

    # in place, the run folder is inside the edited tree: it must not show up in the patch
    out = demo_repo / "runs" / "in-place"
    proc = run_cli("code", "fix median", "--in-place", "--model", f"replay:{script}", "--out", "runs/in-place",
                   "--quiet", cwd=demo_repo)
    assert proc.returncode == 0, proc.stderr
    patch = (out / "patch.diff").read_text()
    assert "ordered[middle - 1]" in patch and "trajectory.jsonl" not in patch


def test_ctrl_c_leaves_a_cancelled_run_that_resumes(tmp_path: Path, demo_repo: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.fixtures_cli import cli_env

    turns = [{"content": "", "tool_calls": [_call("bash", command="while [ ! -e go ]; do sleep 0.1; done; echo released")]},
             {"content": "", "tool_calls": [_call("submit", summary="released")]}]
    script = write_jsonl(tmp_path / "script.jsonl", turns)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "agentkit", "code", "wait", "--repo", str(demo_repo),
                             "--model", f"replay:{script}", "--out", str(out), "--quiet"],
                            env=cli_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    traj = out / "trajectory.jsonl"
    while proc.poll() is None and not (traj.exists() and "while [ ! -e go ]" in traj.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "cancelled" and result["steps"] == 1
    (out / "workspace" / "go").write_text("")
    done = run_cli("resume", str(traj), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "done"


def test_max_cost_stops_the_run(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    from agentkit.testing.server import Reply

    srv = fake_server_thread(responder=lambda req: Reply(tool_calls=[_call("bash", command="ls")],
                                                         usage={"cost": 0.4}))
    out = tmp_path / "out"
    proc = run_cli("code", "look around", "--repo", str(demo_repo), "--provider", "openai-compatible",
                   "--base-url", srv.base_url, "--model", "m", "--max-cost", "0.5", "--out", str(out),
                   "--price", "1,1")  # a cap needs a known price; the server's reported cost still rules
    assert proc.returncode == 1
    assert "limit: cost reached" in proc.stdout and "status: limit" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "limit" and result["cost_usd"] == 0.8 and result["steps"] == 2
