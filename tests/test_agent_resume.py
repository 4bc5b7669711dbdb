"""Resume: kill -9 a running agent process, then continue its trajectory to the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from agentkit.agent import INTERRUPTED, Agent
from agentkit.messages import ToolMessage
from agentkit.models.replay import Replay
from agentkit.trajectory import Trajectory
from tests.fixtures_agent import turn

CHILD = textwrap.dedent('''
    import asyncio, pathlib, sys
    from agentkit.agent import Agent
    from agentkit.models.replay import Replay
    from agentkit.tools.base import tool

    mode, script, traj, marker = sys.argv[1:5]

    @tool
    async def step(n: int) -> str:
        """Do step n.

        Args:
            n: the step number
        """
        if n == 2 and mode == "run":
            pathlib.Path(marker).write_text("inside step 2")
            await asyncio.sleep(600)  # killed here
        return f"did {n}"

    agent = Agent(Replay(script), [step], trajectory=traj, fsync=True)
    result = agent.run_sync("do the steps") if mode == "run" else agent.resume_sync(traj)
    print(result.model_dump_json())
''')


def _child(tmp_path, mode, script, traj, marker):
    code = tmp_path / "child.py"
    code.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen([sys.executable, str(code), mode, str(script), str(traj), str(marker)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_kill_9_then_resume_continues_the_same_file(tmp_path, script_file) -> None:
    script = script_file([turn(None, ("step", {"n": 1})), turn(None, ("step", {"n": 2}), ("step", {"n": 3})),
                          turn(None, ("step", {"n": 4})), turn("finished all steps")])
    traj, marker = tmp_path / "run.jsonl", tmp_path / "marker"
    proc = _child(tmp_path, "run", script, traj, marker)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the child never reached step 2"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    killed = Trajectory.load(traj)
    assert killed.status == "incomplete" and killed.steps == 2 and len(killed.tool_results) == 1

    resumed = _child(tmp_path, "resume", script, traj, marker)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "done" and result["answer"] == "finished all steps" and result["steps"] == 4

    t = Trajectory.load(traj)
    assert t.status == "done" and t.steps == 4
    # step 2 was cut off and step 3 never got its result: neither runs again, both are reported
    assert [m.text for m in t.messages if isinstance(m, ToolMessage)] == ["did 1", INTERRUPTED, INTERRUPTED, "did 4"]
    assert [r["observation"]["is_error"] for r in t.tool_results] == [False, True, True, False]
    assert [e["kind"] for e in t.events] == ["resume"] and t.events[0]["previous_status"] == "incomplete"
    assert sum(1 for r in t.records if r["type"] == "run") == 1  # appended to the same file
    # the history is a valid conversation: every call has its result right after its turn
    calls = t.model_calls()
    assert [len(c) for c in calls] == [2, 4, 7, 9]


async def test_resume_of_a_finished_run_makes_no_call(tmp_path, agent_tools) -> None:
    path = tmp_path / "t.jsonl"
    first = await Agent(Replay([turn("done already")]), agent_tools, trajectory=path).run("t")
    assert first.status == "done"
    model = Replay([turn("should not be played")])
    again = await Agent(model, agent_tools).resume(path)
    assert again.status == "done" and again.answer == "done already" and model.calls == []


async def test_resume_after_cancel_reruns_nothing_and_continues(tmp_path, agent_tools) -> None:
    path = tmp_path / "t.jsonl"
    turns = [turn(None, ("echo", {"text": "a"})), turn(None, ("echo", {"text": "b"})), turn("end")]
    agent = Agent(Replay(turns), agent_tools, trajectory=path)
    async for e in agent.iter("t"):
        if e.kind == "tool_call_finished":
            agent.cancel()
    assert Trajectory.load(path).status == "cancelled"
    resumed = await Agent(Replay(turns), agent_tools).resume(path)
    assert resumed.status == "done" and resumed.answer == "end" and resumed.steps == 3
    texts = [m.text for m in Trajectory.load(path).messages if isinstance(m, ToolMessage)]
    assert texts == ["A", "B"]


def test_ctrl_c_ends_cancelled_with_a_complete_trajectory(tmp_path, script_file) -> None:
    script = script_file([turn(None, ("step", {"n": 1})), turn(None, ("step", {"n": 2})), turn("never")])
    traj, marker = tmp_path / "run.jsonl", tmp_path / "marker"
    proc = _child(tmp_path, "run", script, traj, marker)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the child never reached step 2"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # run_sync returned the cancelled result instead of a traceback
    assert json.loads(out.strip().splitlines()[-1])["status"] == "cancelled"
    t = Trajectory.load(traj)
    assert t.status == "cancelled" and t.steps == 2
    assert t.tool_results[-1]["name"] == "step" and "cancelled" in t.tool_results[-1]["observation"]["text"]


async def test_resume_errors_are_one_line_config_errors(tmp_path, agent_tools) -> None:
    import pytest

    from agentkit.errors import ConfigError

    with pytest.raises(ConfigError, match="not found"):
        await Agent(Replay([]), agent_tools).resume(tmp_path / "missing.jsonl")
    (tmp_path / "x.jsonl").write_text('{"content": "a replay script, not a trajectory"}\n')
    with pytest.raises(ConfigError, match="no run record"):
        await Agent(Replay([]), agent_tools).resume(tmp_path / "x.jsonl")


async def test_a_new_run_starts_a_fresh_file(tmp_path, agent_tools) -> None:
    path = tmp_path / "t.jsonl"
    await Agent(Replay([turn("first")]), agent_tools, trajectory=path).run("one")
    await Agent(Replay([turn("second")]), agent_tools, trajectory=path).run("two")
    t = Trajectory.load(path)
    assert sum(1 for r in t.records if r["type"] == "run") == 1 and t.task == "two" and t.answer == "second"


SHELL_CHILD = textwrap.dedent('''
    import asyncio, json, pathlib, subprocess, sys
    from agentkit.agent import Agent
    from agentkit.models.replay import Replay
    from agentkit.tools.base import tool

    mode, script, traj, marker, workdir = sys.argv[1:6]

    @tool
    async def sh(command: str) -> str:
        """Run a shell command.

        Args:
            command: the command
        """
        out = subprocess.run(command, shell=True, cwd=workdir, capture_output=True, text=True).stdout
        if mode == "run":
            pathlib.Path(marker).write_text("ran")
            await asyncio.sleep(600)  # killed here, after the command had its effect
        return out or "(no output)"

    model = Replay(script)
    agent = Agent(model, [sh], trajectory=traj, fsync=True)
    result = agent.run_sync("append x") if mode == "run" else agent.resume_sync(traj)
    print(json.dumps([[m.to_openai() for m in c["messages"]] for c in model.calls]))
    print(result.model_dump_json())
''')


def test_resume_never_reruns_a_call_cut_off_by_a_kill(tmp_path, script_file) -> None:
    """Issue 14: `echo x >> f` was running when the process died; resume records it as interrupted
    (is_error) instead of running it again, and the model's next request says so."""
    script = script_file([turn(None, ("sh", {"command": "echo x >> f"})), turn("checked f")])
    traj, marker, work = tmp_path / "run.jsonl", tmp_path / "marker", tmp_path / "work"
    work.mkdir()
    code = tmp_path / "shell_child.py"
    code.write_text(SHELL_CHILD)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    argv = [sys.executable, str(code), "run", str(script), str(traj), str(marker), str(work)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the child never ran the command"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    killed = Trajectory.load(traj)
    assert killed.records[-1]["type"] == "message" and killed.records[-1]["message"]["tool_calls"]
    assert (work / "f").read_text() == "x\n"

    argv[2] = "resume"
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    calls_line, result_line = done.stdout.strip().splitlines()[-2:]
    assert json.loads(result_line)["status"] == "done"
    assert (work / "f").read_text() == "x\n"  # ran zero extra times
    first_request = json.loads(calls_line)[0]
    assert first_request[-1]["role"] == "tool" and first_request[-1]["content"] == INTERRUPTED
    t = Trajectory.load(traj)
    (result,) = t.tool_results
    assert result["observation"] == {**result["observation"], "text": INTERRUPTED, "is_error": True}
    assert "interrupted" in INTERRUPTED and "effects are unknown" in INTERRUPTED
