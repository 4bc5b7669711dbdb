"""The library's contract (issue 15): failed runs raise typed errors carrying their result,
``iter()`` does not; conversations (``messages``, ``history=``); per-run state (``trajectory=``
per call, overlapping runs, one writer per file); mistakes at construction; sync use inside a
running event loop and the ``on_event`` callback."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from agentkit import events as ev
from agentkit.agent import Agent, AgentRun, Limits
from agentkit.errors import AuthError, ConfigError, ModelError, SandboxError
from agentkit.messages import UserMessage
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.models.replay import Replay
from agentkit.testing.server import Fault
from agentkit.tools.base import tool
from agentkit.trajectory import Trajectory, TrajectoryWriter


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text.upper()


def _call(name: str, args: dict[str, object], id: str = "c1") -> dict[str, object]:
    return {"content": "", "tool_calls": [{"id": id, "type": "function",
                                           "function": {"name": name, "arguments": json.dumps(args)}}]}


# --- errors raise ------------------------------------------------------------------------------
async def test_an_auth_failure_raises_auth_error_with_the_result(fake_server, tmp_path: Path) -> None:
    srv = await fake_server([Fault(status=401, body={"error": {"code": 401, "message": "No auth credentials"}})])
    model = OpenAICompatible("deepseek/deepseek-chat-v3.1", base_url=srv.base_url, provider="openrouter",
                             api_key="sk-or-wrong")
    path = tmp_path / "run.jsonl"
    try:
        with pytest.raises(AuthError) as failed:
            await Agent(model, [echo]).run("hi", trajectory=path)
    finally:
        await model.aclose()
    err = failed.value
    assert err.result is not None and err.result.status == "error" and err.result.error_type == "AuthError"
    assert err.trajectory_path == str(path) == err.result.trajectory_path
    assert Trajectory.load(path).status == "error"  # the file is complete


def test_a_failed_run_raises_from_run_sync_and_limits_return() -> None:
    with pytest.raises(ModelError, match="replay script ran out") as failed:
        Agent(Replay([])).run_sync("x")
    assert failed.value.result is not None and failed.value.result.status == "error"
    result = Agent(Replay([_call("echo", {"text": "a"})] * 3), [echo], limits=Limits(max_steps=1)).run_sync("x")
    assert result.status == "limit"  # a limit is an outcome, not an error


async def test_iter_does_not_raise_and_ends_with_the_end_event() -> None:
    run = Agent(Replay([])).iter("x")
    assert isinstance(run, AgentRun)
    events = [e async for e in run]
    assert isinstance(events[-1], ev.RunEnded) and events[-1].status == "error"
    assert run.result is not None and run.result.status == "error"
    assert isinstance(run.error, ModelError) and run.error.result is run.result
    with pytest.raises(ModelError):
        run.outcome()


# --- conversations -----------------------------------------------------------------------------
def test_history_continues_a_conversation() -> None:
    model = Replay([{"content": "Hello, Ada."}, {"content": "Your name is Ada."}])
    agent = Agent(model, system="Be brief.")
    first = agent.run_sync("My name is Ada.")
    assert [m.role for m in first.messages] == ["system", "user", "assistant"]
    second = agent.run_sync("What is my name?", history=first.messages)
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "user", "assistant"]
    sent = model.calls[1]["messages"]
    assert [m.text for m in sent if isinstance(m, UserMessage)] == ["My name is Ada.", "What is my name?"]
    assert second.answer == "Your name is Ada."


# --- per-run state -----------------------------------------------------------------------------
async def test_one_agent_runs_concurrently_with_its_own_budget(tmp_path: Path) -> None:
    class Script(Replay):
        """One script per task, chosen by the task text: one model object serves overlapping runs."""

        def __init__(self) -> None:
            super().__init__([])
            self.by_task = {f"task {i}": Replay([_call("echo", {"text": f"r{i}"}), {"content": f"answer {i}"}])
                            for i in range(4)}

        async def complete(self, messages, tools=None, settings=None, on_event=None):  # type: ignore[override]
            task = next(m.text for m in messages if isinstance(m, UserMessage))
            await asyncio.sleep(0.01)  # the runs interleave
            return await self.by_task[task].complete(messages, tools, settings, on_event=on_event)

    agent = Agent(Script(), [echo], limits=Limits(max_steps=2))
    results = await asyncio.gather(*(agent.run(f"task {i}", trajectory=tmp_path / f"{i}.jsonl") for i in range(4)))
    for i, r in enumerate(results):
        assert r.status == "done" and r.answer == f"answer {i}" and r.steps == 2, r  # max_steps=2 per run
        t = Trajectory.load(tmp_path / f"{i}.jsonl")
        assert t.task == f"task {i}" and t.answer == f"answer {i}"


async def test_a_trajectory_file_refuses_a_second_writer(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with TrajectoryWriter(path, append=False) as first:
        first.event("x")
        with pytest.raises(ConfigError, match="being written by another run"):
            TrajectoryWriter(path, append=False)
        assert path.read_text(encoding="utf-8").count("\n") == 1  # the refused writer changed nothing
        with pytest.raises(ConfigError, match="being written by another run"):
            await Agent(Replay([{"content": "x"}])).run("t", trajectory=path)
    TrajectoryWriter(path, append=True).close()  # free again once closed


# --- mistakes at construction --------------------------------------------------------------------
def test_a_plain_function_as_a_tool_names_the_fix() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ConfigError, match=r"'add' is not a tool: decorate it with @tool"):
        Agent(Replay([]), [add])  # type: ignore[list-item]


def test_two_tools_with_one_name_are_refused() -> None:
    @tool(name="echo")
    def other(text: str) -> str:
        """Another echo."""
        return text

    with pytest.raises(ConfigError, match=r"two tools are named 'echo'"):
        Agent(Replay([]), [echo, other])


# --- sync use ----------------------------------------------------------------------------------
async def test_run_sync_works_inside_a_running_event_loop() -> None:
    # as in a Jupyter cell: a loop is running in this thread
    result = Agent(Replay([{"content": "from a notebook"}])).run_sync("hi")
    assert result.status == "done" and result.answer == "from a notebook"
    with pytest.raises(ModelError):  # and errors still raise from there
        Agent(Replay([])).run_sync("hi")


def test_run_sync_on_event_gets_the_typed_events() -> None:
    seen: list[ev.Event] = []
    result = Agent(Replay([_call("echo", {"text": "a"}), {"content": "ok"}]), [echo]).run_sync("x", on_event=seen.append)
    assert result.status == "done"
    kinds = [e.kind for e in seen]
    assert kinds[0] == "model_call_started" and kinds[-1] == "end"
    assert "tool_call_started" in kinds and "tool_call_finished" in kinds
    assert all(isinstance(e, ev.Event) for e in seen)


def test_a_sandbox_preset_without_a_sandbox_and_a_path_as_an_image_fail_at_construction(tmp_path: Path) -> None:
    from agentkit.presets import CODE
    from agentkit.sandboxes import DockerSandbox, LocalSandbox

    with pytest.raises(ConfigError, match="the code preset runs commands in a sandbox"):
        CODE.build_agent(Replay([]))
    with pytest.raises(SandboxError, match=r"is a host path, not an image name.*DockerSandbox\(image=\.\.\., workspace=PATH\)"):
        DockerSandbox(image=str(tmp_path))
    with pytest.raises(SandboxError, match=r"DockerSandbox\(image=\.\.\., workspace=PATH\)"):
        DockerSandbox(image=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(SandboxError, match=r"DockerSandbox\(image='python:3.12'"):
        LocalSandbox(workspace="python:3.12")
    assert LocalSandbox(workspace=tmp_path).workspace == str(tmp_path.resolve())  # keywords for both


def test_both_sandboxes_take_keywords_only_and_a_positional_call_names_the_fix(tmp_path: Path) -> None:
    """``LocalSandbox(x)`` took x as the workspace and ``DockerSandbox(x)`` as the image (issue 15):
    both refuse positional arguments now, with the call to write instead."""
    import inspect

    from agentkit.sandboxes import DockerSandbox, LocalSandbox

    with pytest.raises(TypeError, match=rf"LocalSandbox takes keyword arguments only: write "
                                        rf"LocalSandbox\(workspace='{re.escape(str(tmp_path))}'\)"):
        LocalSandbox(tmp_path)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"DockerSandbox takes keyword arguments only: write "
                                        r"DockerSandbox\(image='python:3.12'\)"):
        DockerSandbox("python:3.12")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=rf"write DockerSandbox\(workspace='{re.escape(str(tmp_path))}'\) for a host folder"):
        DockerSandbox(tmp_path, "x")  # type: ignore[call-arg]
    for cls in (LocalSandbox, DockerSandbox):  # what editors, type checkers and the docs see
        params = list(inspect.signature(cls).parameters.values())
        assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), cls
