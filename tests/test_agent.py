"""The agent loop driven by the replay model with real tools: turns, bad output, limits, events."""

from __future__ import annotations

import asyncio

import pytest

from agentkit import events as ev
from agentkit.agent import Agent, Limits
from agentkit.agent.compactor import ContextPolicy
from agentkit.errors import ModelError
from agentkit.messages import AssistantMessage, ToolMessage, UserMessage
from agentkit.models.base import ModelSettings
from agentkit.models.replay import Replay
from agentkit.trajectory import Trajectory
from tests.fixtures_agent import turn


def _agent(turns, tools, tmp_path, **kw):
    model = Replay(turns)
    return Agent(model, tools, trajectory=tmp_path / "traj.jsonl", **kw), model


def _tool_texts(path):
    return [m.text for m in Trajectory.load(path).messages if isinstance(m, ToolMessage)]


async def test_parallel_safe_calls_run_concurrently_results_in_call_order(tmp_path, agent_tools, probe) -> None:
    agent, model = _agent([turn(None, ("meet", {"name": "a"}), ("echo", {"text": "x"}), ("meet", {"name": "b"})),
                           turn("all done")], agent_tools, tmp_path)
    result = await agent.run("go")
    assert result.status == "done" and result.answer == "all done" and result.steps == 2
    assert probe.max_active == 2  # both meet calls were in flight together
    assert _tool_texts(result.trajectory_path) == ["a: met", "X", "b: met"]
    second_call = model.calls[1]["messages"]
    calls = [m for m in second_call if isinstance(m, AssistantMessage)][0].tool_calls
    results = [m for m in second_call if isinstance(m, ToolMessage)]
    assert [r.tool_call_id for r in results] == [c.id for c in calls]  # results follow call order


async def test_unsafe_tools_run_one_at_a_time(tmp_path, agent_tools, probe) -> None:
    agent, _ = _agent([turn(None, ("write", {"key": "a", "value": "1"}), ("write", {"key": "b", "value": "2"}),
                            ("echo", {"text": "z"})), turn("ok")], agent_tools, tmp_path)
    result = await agent.run("store")
    assert result.status == "done"
    assert probe.max_active == 1
    assert _tool_texts(result.trajectory_path) == ["stored a", "stored b", "Z"]


async def test_every_bad_output_becomes_an_error_observation(tmp_path, agent_tools) -> None:
    turns = [
        turn(None, ("nope", {})),  # unknown tool
        turn(None, ("echo", '{"text": ')),  # invalid JSON
        turn("good", ("echo", {"text": "fine"})),  # resets the counter
        turn(None, ("echo", {"txt": "x"})),  # schema failure
        turn(None, ("boom", {"reason": "disk on fire"})),  # exception inside the tool: not a format error
        turn(""),  # empty reply
        turn("done"),
    ]
    agent, _ = _agent(turns, agent_tools, tmp_path)
    result = await agent.run("t")
    assert result.status == "done" and result.answer == "done"
    t = Trajectory.load(result.trajectory_path)
    texts = [m.text for m in t.messages if isinstance(m, (ToolMessage, UserMessage))][1:]
    assert "no tool named 'nope'" in texts[0] and "Valid tools: boom, cite, echo" in texts[0]
    assert "not valid JSON" in texts[1] and '"required": ["text"]' in texts[1]
    assert texts[2] == "FINE"
    assert "txt: unexpected argument" in texts[3] and "text: Field required" in texts[3]
    assert "tool boom failed: RuntimeError: disk on fire" in texts[4]
    assert "reply was empty" in texts[5]
    errors = [r["observation"]["is_error"] for r in t.tool_results]
    assert errors == [True, True, False, True, True]
    # the failed turns stay in the history
    assert [m.tool_calls[0].name for m in t.messages if isinstance(m, AssistantMessage) and m.tool_calls] == \
        ["nope", "echo", "echo", "echo", "boom"]


async def test_consecutive_format_errors_end_with_error(tmp_path, agent_tools) -> None:
    turns = [turn(None, ("nope", {}))] * 2 + [turn(None, ("echo", "not json"))] + [turn("never reached")]
    agent, model = _agent(turns, agent_tools, tmp_path, limits=Limits(max_format_errors=3))
    with pytest.raises(ModelError) as failed:  # a failed run raises, with its result
        await agent.run("t")
    result = failed.value.result
    assert result is not None and failed.value.trajectory_path == result.trajectory_path
    assert result.status == "error" and "3 malformed model turns in a row" in result.error
    assert model.remaining == 1
    assert Trajectory.load(result.trajectory_path).status == "error"


async def test_model_warnings_are_shown_to_the_model(tmp_path, agent_tools) -> None:
    turns = [turn("<｜tool▁calls▁begin｜>garbage", warnings=["a tool call in your reply could not be parsed"]),
             turn("final")]
    agent, model = _agent(turns, agent_tools, tmp_path)
    result = await agent.run("t")
    assert result.status == "done" and result.answer == "final"  # a reply with warnings is not the answer
    seen = model.calls[1]["messages"][-1]
    assert isinstance(seen, UserMessage) and "could not be parsed" in seen.text


async def test_repeated_action_warns_then_ends(tmp_path, agent_tools) -> None:
    same = turn(None, ("echo", {"text": "again"}))
    agent, model = _agent([same] * 6, agent_tools, tmp_path, limits=Limits(max_repeats=3))
    with pytest.raises(ModelError) as failed:
        await agent.run("t")
    result = failed.value.result
    assert result.status == "error" and "repeated the same action 4 times" in result.error
    assert result.steps == 4
    warned = [m for m in model.calls[3]["messages"] if isinstance(m, UserMessage) and "same call 3 times" in m.text]
    assert len(warned) == 1
    assert [e["kind"] for e in Trajectory.load(result.trajectory_path).events] == ["warning"]


async def test_require_submit_reminds_once_then_ends(tmp_path, agent_tools) -> None:
    agent, model = _agent([turn("I think it is 4"), turn("it is 4")], agent_tools, tmp_path, require_submit=True)
    result = await agent.run("2+2?")
    assert result.status == "done" and result.answer == "it is 4" and result.steps == 2
    assert "call the `submit` tool" in model.calls[1]["messages"][-1].text


async def test_submit_call_ends_with_its_summary(tmp_path, agent_tools) -> None:
    agent, model = _agent([turn(None, ("echo", {"text": "w"}), ("submit", {"summary": "patched the bug"})),
                           turn("unused")], agent_tools, tmp_path, require_submit=True)
    result = await agent.run("fix it")
    assert result.status == "done" and result.answer == "patched the bug" and result.steps == 1
    assert model.remaining == 1


async def test_step_limit_then_resume_with_higher_limit(tmp_path, agent_tools) -> None:
    turns = [turn(None, ("echo", {"text": str(i)})) for i in range(3)] + [turn("finished")]
    agent, _ = _agent(turns, agent_tools, tmp_path, limits=Limits(max_steps=2))
    result = await agent.run("count")
    assert result.status == "limit" and result.steps == 2 and "steps limit" in result.error
    t = Trajectory.load(result.trajectory_path)
    assert t.status == "limit" and [e["limit"] for e in t.events if e["kind"] == "limit"] == ["steps"]
    again = Agent(Replay(turns), agent_tools, limits=Limits(max_steps=10))
    resumed = await again.resume(result.trajectory_path)
    assert resumed.status == "done" and resumed.answer == "finished" and resumed.steps == 4
    t = Trajectory.load(result.trajectory_path)
    assert t.status == "done" and t.steps == 4
    assert [m.text for m in t.messages if isinstance(m, ToolMessage)] == ["0", "1", "2"]


async def test_token_limit_caps_each_calls_max_tokens(tmp_path, agent_tools) -> None:
    u = {"prompt": 1100, "completion": 100}
    turns = [turn(None, ("echo", {"text": "a"}), usage=u), turn(None, ("echo", {"text": "b"}), usage=u),
             turn("end", usage=u)]
    agent, model = _agent(turns, agent_tools[:1], tmp_path, limits=Limits(max_total_tokens=2500),
                          settings=ModelSettings(max_tokens=5000))
    result = await agent.run("t")
    assert result.status == "limit" and result.steps == 2 and result.usage.total == 2400
    first, second = model.calls
    budget_1 = 2500 - agent.compactor.count(first["messages"], agent.tool_schemas())
    budget_2 = 2500 - 1200 - agent.compactor.count(second["messages"], agent.tool_schemas())
    assert first["settings"].max_tokens == budget_1 < 5000
    assert second["settings"].max_tokens == budget_2
    t = Trajectory.load(result.trajectory_path)
    assert t.events[-1]["kind"] == "limit" and t.events[-1]["limit"] == "tokens"


async def test_cost_limit_caps_max_tokens_from_prices(tmp_path, agent_tools) -> None:
    u = {"prompt": 1000, "completion": 1000, "cost_usd": 0.0049}
    turns = [turn(None, ("echo", {"text": "a"}), usage=u)] * 3 + [turn("end")]
    agent, model = _agent(turns, agent_tools, tmp_path, limits=Limits(max_cost_usd=0.01), prices=(1.0, 2.0))
    result = await agent.run("t")
    assert result.status == "limit" and result.cost_usd == pytest.approx(0.0098)
    for i, spent in enumerate((0.0, 0.0049)):  # each cap leaves room for the prompt's own cost
        p = agent.compactor.count(model.calls[i]["messages"], agent.tool_schemas())
        assert model.calls[i]["settings"].max_tokens == int((0.01 - spent - p * 1.0 / 1e6) * 1e6 / 2.0)
    # 0.0002 USD left cannot even pay for the third prompt: that call is never made
    assert len(model.calls) == 2
    assert Trajectory.load(result.trajectory_path).events[-1]["limit"] == "cost"


async def test_wall_time_limit(tmp_path, agent_tools) -> None:
    agent, _ = _agent([turn(None, ("sleep", {"seconds": 0.05}))] * 3, agent_tools, tmp_path,
                      limits=Limits(max_wall_s=0.01))
    result = await agent.run("t")
    assert result.status == "limit" and result.steps == 1 and "wall_time" in result.error


async def test_wall_time_limit_stops_a_hung_tool(tmp_path, agent_tools) -> None:
    agent, _ = _agent([turn(None, ("sleep", {"seconds": 600}))], agent_tools, tmp_path,
                      limits=Limits(max_wall_s=0.5))
    result = await agent.run("t")
    assert result.status == "limit" and "wall_time" in result.error
    obs = Trajectory.load(result.trajectory_path).tool_results[0]["observation"]
    assert obs["is_error"] and "wall-time limit (0.5 s)" in obs["text"]


async def test_events_and_streaming_deltas(tmp_path, agent_tools) -> None:
    agent, _ = _agent([turn(None, ("echo", {"text": "q"}), reasoning="let me think"),
                       turn("the final answer")], agent_tools, tmp_path, stream=True)
    seen = [e async for e in agent.iter("t")]
    kinds = [e.kind for e in seen]
    assert kinds[0] == "model_call_started" and kinds[-1] == "end"
    assert "".join(e.text for e in seen if isinstance(e, ev.ReasoningDelta)) == "let me think"
    assert "".join(e.text for e in seen if isinstance(e, ev.ContentDelta)) == "the final answer"
    started = [e for e in seen if isinstance(e, ev.ToolCallStarted)]
    finished = [e for e in seen if isinstance(e, ev.ToolCallFinished)]
    assert started[0].name == "echo" and finished[0].text == "Q"
    done = [e for e in seen if isinstance(e, ev.ModelCallFinished)]
    assert len(done) == 2 and done[0].usage.total > 0
    assert seen[-1].status == "done" and agent.result.answer == "the final answer"


async def test_long_observation_is_cut_but_logged_whole(tmp_path, agent_tools) -> None:
    agent, model = _agent([turn(None, ("long_output", {"n": 5000})), turn("ok")], agent_tools, tmp_path,
                          context_policy=ContextPolicy(max_observation_chars=600))
    result = await agent.run("t")
    shown = model.calls[1]["messages"][-1].text
    assert "characters left out of 5000" in shown and len(shown) < 700
    assert shown.startswith("line 00000\nline 00001") and shown.endswith("line 00453\nline 0")
    obs = Trajectory.load(result.trajectory_path).tool_results[0]["observation"]["text"]
    assert len(obs) == 5000


async def test_sources_reach_the_result_and_trajectory(tmp_path, agent_tools) -> None:
    agent, _ = _agent([turn(None, ("cite", {"url": "https://a.example/x", "title": "A"}),
                            ("cite", {"url": "https://b.example/y", "title": "B"})),
                       turn("see [citation:2]")], agent_tools, tmp_path)
    result = await agent.run("t")
    assert [s.url for s in result.sources] == ["https://a.example/x", "https://b.example/y"]  # typed
    assert Trajectory.load(result.trajectory_path).sources == [s.model_dump() for s in result.sources]


async def test_replay_running_out_is_a_clear_error(tmp_path, agent_tools) -> None:
    agent, _ = _agent([turn(None, ("echo", {"text": "a"}))], agent_tools, tmp_path)
    with pytest.raises(ModelError) as failed:
        await agent.run("t")
    result = failed.value.result
    assert result.status == "error" and "replay script ran out after 1 turns" in result.error
    assert Trajectory.load(result.trajectory_path).end["error"] == result.error


async def test_cancelling_the_task_leaves_a_complete_trajectory(tmp_path, agent_tools, probe) -> None:
    agent, _ = _agent([turn(None, ("echo", {"text": "a"})), turn(None, ("sleep", {"seconds": 60}),
                                                                  ("echo", {"text": "b"}))], agent_tools, tmp_path)
    task = asyncio.create_task(agent.run("t"))
    while "sleep 60.0" not in probe.calls:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert agent.result.status == "cancelled"
    t = Trajectory.load(agent.result.trajectory_path)
    assert t.status == "cancelled" and t.steps == 2
    last = t.tool_results[-2:]
    assert [r["name"] for r in last] == ["sleep", "echo"]  # every call of the turn has a result
    assert all("cancelled" in r["observation"]["text"] for r in last)


async def test_cancel_method_stops_before_next_step(tmp_path, agent_tools) -> None:
    agent, model = _agent([turn(None, ("echo", {"text": "a"}))] * 3, agent_tools, tmp_path)
    async for e in agent.iter("t"):
        if isinstance(e, ev.ToolCallFinished):
            agent.cancel()
    assert agent.result.status == "cancelled" and agent.result.steps == 1 and model.remaining == 2


def test_run_sync(tmp_path, agent_tools) -> None:
    agent, _ = _agent([turn("sync answer")], agent_tools, tmp_path)
    result = agent.run_sync("t")
    assert result.status == "done" and result.answer == "sync answer"


async def test_run_record_and_tool_context_carry_run_info(tmp_path, agent_tools) -> None:
    seen = {}

    from agentkit.tools.base import ToolContext, tool

    @tool
    def peek(ctx: ToolContext) -> str:
        """Report what the context holds."""
        seen.update(ctx.settings)
        seen["run_id"] = ctx.run_id
        return "ok"

    agent, _ = _agent([turn(None, ("peek", {})), turn("done")], [peek], tmp_path,
                      settings=ModelSettings(temperature=0.3, extra_body={"api_key": "sk-hidden-123456"}),
                      run_info={"preset": "code", "task": "must not override", "repo": "/src"})
    result = await agent.run("the real task")
    run = Trajectory.load(result.trajectory_path).run
    assert run["preset"] == "code" and run["repo"] == "/src" and run["task"] == "the real task"
    assert run["settings"]["temperature"] == 0.3 and run["tools"][0]["function"]["name"] == "peek"
    assert seen["preset"] == "code" and seen["temperature"] == 0.3 and seen["run_id"] == run["id"]
    assert seen["extra_body"]["api_key"] == "[redacted]"
    assert "sk-hidden-123456" not in open(result.trajectory_path).read()


async def test_reply_cut_at_max_tokens_is_not_taken_as_the_answer(tmp_path, agent_tools) -> None:
    cut = dict(turn("The answer is a long expla"), finish_reason="length")
    cut_call = dict(turn(None, ("echo", '{"text": "unfini')), finish_reason="length")
    agent, model = _agent([cut, cut_call, turn("The answer is 4.")], agent_tools, tmp_path)
    result = await agent.run("t")
    assert result.status == "done" and result.answer == "The answer is 4."
    assert "cut off" in model.calls[1]["messages"][-1].text
    last = model.calls[2]["messages"]
    assert "not valid JSON" in last[-2].text and "output token limit" in last[-1].text


async def test_max_tokens_never_asks_past_the_window(tmp_path, agent_tools) -> None:
    agent, model = _agent([turn("ok")], agent_tools[:1], tmp_path, window=3000,
                          settings=ModelSettings(max_tokens=8000))
    await agent.run("t")
    prompt = agent.compactor.count(model.calls[0]["messages"], agent.tool_schemas())
    assert model.calls[0]["settings"].max_tokens == 3000 - prompt
    plain, model = _agent([turn("ok")], agent_tools[:1], tmp_path, window=3000)
    await plain.run("t")
    assert model.calls[0]["settings"].max_tokens is None  # nothing set, nothing sent
