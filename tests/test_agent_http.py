"""The agent loop against the fake OpenAI-compatible server over real loopback HTTP."""

from __future__ import annotations

import json

import pytest

from agentkit.agent import Agent, Limits
from agentkit.errors import ContextWindowExceeded
from agentkit.messages import messages_to_openai
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.models.retry import Backoff
from agentkit.testing.server import Fault, Reply
from agentkit.trajectory import Trajectory

KEY = "sk-or-v1-agentkit-test-0123456789abcdef"
MODEL = "deepseek/deepseek-chat-v3.1"  # in the catalog: window and prices are known


def _call(name, args, id=None):
    out = {"name": name, "arguments": json.dumps(args)}
    if id:
        out["id"] = id
    return out


def _model(srv, **kw):
    return OpenAICompatible(MODEL, base_url=srv.base_url, api_key=KEY, backoff=Backoff(base_s=0.0, max_s=0.0), **kw)


async def test_parallel_calls_and_trajectory_equals_what_was_sent(fake_server, tmp_path, agent_tools, probe) -> None:
    srv = await fake_server([
        Reply(content=None, reasoning="two lookups", tool_calls=[_call("meet", {"name": "a"}, "call_a"),
                                                                 _call("echo", {"text": "mid"}, "call_m"),
                                                                 _call("meet", {"name": "b"}, "call_b")]),
        Reply(content=None, tool_calls=[_call("nope", {})]),
        Reply(content="The answer."),
    ])
    path = tmp_path / "t.jsonl"
    agent = Agent(_model(srv), agent_tools, trajectory=path, system="sys prompt")
    result = await agent.run("find it")
    assert result.status == "done" and result.answer == "The answer." and result.steps == 3
    assert probe.max_active == 2
    sent = [r["json"] for r in srv.requests]
    assert len(sent) == 3
    second = sent[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool", "tool"]
    assert [m["tool_call_id"] for m in second[3:]] == ["call_a", "call_m", "call_b"]
    assert [m["content"] for m in second[3:]] == ["a: met", "MID", "b: met"]
    assert "no tool named 'nope'" in sent[2]["messages"][-1]["content"]
    t = Trajectory.load(path)
    calls = t.model_calls()
    assert [messages_to_openai(c) for c in calls] == [s["messages"] for s in sent]
    assert messages_to_openai(t.context_messages()) == sent[-1]["messages"]
    assert all(s["tools"] == t.tools for s in sent)
    assert t.usage.prompt == sum(r["usage"]["prompt"] for r in t.records if r["type"] == "message" and r["usage"])


async def test_api_key_never_reaches_the_trajectory(fake_server, tmp_path, agent_tools) -> None:
    srv = await fake_server([Fault(status=500), Reply(content=None, tool_calls=[_call("echo", {"text": KEY})]),
                             Reply(content="ok")])
    path = tmp_path / "t.jsonl"
    agent = Agent(_model(srv), agent_tools, trajectory=path, run_info={"headers": {"Authorization": f"Bearer {KEY}"}})
    result = await agent.run(f"my key is {KEY}")
    assert result.status == "done"
    assert srv.requests[0]["headers"].get("authorization") == f"Bearer {KEY}"  # it was really sent
    text = path.read_text()
    assert KEY not in text and "[redacted]" in text
    t = Trajectory.load(path)
    assert [e["kind"] for e in t.events] == ["retry"] and t.events[0]["status"] == 500


async def test_per_call_max_tokens_cap_in_request_body(fake_server, tmp_path, agent_tools) -> None:
    srv = await fake_server([Reply(content=None, tool_calls=[_call("echo", {"text": "x"})],
                                   usage={"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}),
                             Reply(content="done", usage={"prompt_tokens": 1200, "completion_tokens": 10,
                                                          "total_tokens": 1210})])
    path = tmp_path / "t.jsonl"
    agent = Agent(_model(srv), agent_tools[:1], trajectory=path, limits=Limits(max_total_tokens=3000))
    result = await agent.run("t")
    assert result.status == "done"
    t = Trajectory.load(path)
    body = [r["json"] for r in srv.requests]
    for i, spent in enumerate((0, 1200)):
        prompt = agent.compactor.count(t.model_calls()[i], t.tools)
        assert body[i]["max_tokens"] == 3000 - spent - prompt


async def test_cost_limit_uses_catalog_prices_and_provider_cost(fake_server, tmp_path, agent_tools) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100, "cost": 0.006}
    srv = await fake_server([Reply(content=None, tool_calls=[_call("echo", {"text": "x"})], usage=usage)] * 3)
    path = tmp_path / "t.jsonl"
    agent = Agent(_model(srv), agent_tools[:1], trajectory=path, limits=Limits(max_cost_usd=0.01))
    assert agent.budget.prices == (0.20, 0.80)
    result = await agent.run("t")
    assert result.status == "limit" and "cost limit" in result.error
    body = [r["json"] for r in srv.requests]
    assert len(body) == 2
    t = Trajectory.load(path)
    prompt = agent.compactor.count(t.model_calls()[1], t.tools)
    assert body[1]["max_tokens"] == int((0.01 - 0.006 - prompt * 0.20 / 1e6) * 1e6 / 0.80)


async def test_streaming_run_over_http(fake_server, tmp_path, agent_tools) -> None:
    srv = await fake_server([Reply(content=None, tool_calls=[_call("echo", {"text": "s"})], chunk_chars=3),
                             Reply(content="streamed answer", reasoning="hmm", chunk_chars=4)])
    agent = Agent(_model(srv), agent_tools[:1], trajectory=tmp_path / "t.jsonl", stream=True, thinking=True)
    deltas = [e.text async for e in agent.iter("t") if e.kind == "content_delta"]
    assert "".join(deltas) == "streamed answer" and len(deltas) > 1
    assert agent.result.answer == "streamed answer"
    assert all(r["json"]["stream"] is True for r in srv.requests)


async def test_fallback_and_retry_events_reach_iter_and_trajectory(fake_server, tmp_path, agent_tools) -> None:
    from agentkit.models.fallback import Fallback

    down = await fake_server([Fault(status=503)] * 10)
    up = await fake_server([Fault(status=502), Reply(content="from the backup")])
    model = Fallback([_model(down, max_retries=1), _model(up, max_retries=2)])
    path = tmp_path / "t.jsonl"
    agent = Agent(model, agent_tools[:1], trajectory=path)
    kinds = [e.kind async for e in agent.iter("t")]
    assert agent.result.status == "done" and agent.result.answer == "from the backup"
    assert kinds.count("fallback") == 1 and kinds.count("retry") >= 2
    logged = [e["kind"] for e in Trajectory.load(path).events]
    assert logged.count("fallback") == 1 and logged.count("retry") == kinds.count("retry")


async def test_context_window_error_forces_compaction_once(fake_server, tmp_path, agent_tools) -> None:
    too_long = Fault(status=400, body={"error": {"message": "This model's maximum context length is 4000 tokens. "
                                                            "However, you requested 5200 tokens.", "code": 400}})
    srv = await fake_server([Reply(content=None, tool_calls=[_call("long_output", {"n": 4000})]),
                             Reply(content=None, tool_calls=[_call("long_output", {"n": 4001})]),
                             too_long, Reply(content="fits now")])
    path = tmp_path / "t.jsonl"
    agent = Agent(_model(srv), agent_tools, trajectory=path)
    result = await agent.run("t")
    assert result.status == "done" and result.answer == "fits now"
    sent = [r["json"]["messages"] for r in srv.requests]
    assert "[observation elided" not in sent[2][3]["content"]
    assert sent[3][3]["content"].startswith("[observation elided")  # the oldest output went
    assert sent[3][5]["content"].startswith("line 00000")  # the latest turn stayed
    t = Trajectory.load(path)
    assert [e["kind"] for e in t.events] == ["error", "compaction"]
    # the refused prompt is not a call the model answered; the three answered ones rebuild exactly
    assert [messages_to_openai(c) for c in t.model_calls()] == [sent[0], sent[1], sent[3]]


async def test_context_window_error_twice_ends_the_run(fake_server, tmp_path, agent_tools) -> None:
    too_long = Fault(status=400, body={"error": {"message": "maximum context length is 100 tokens", "code": 400}})
    srv = await fake_server([too_long, too_long, Reply(content="unused")])
    agent = Agent(_model(srv), agent_tools, trajectory=tmp_path / "t.jsonl")
    with pytest.raises(ContextWindowExceeded) as failed:
        await agent.run("t")
    result = failed.value.result
    assert result is not None and result.status == "error" and "window" in result.error and len(srv.requests) == 2
