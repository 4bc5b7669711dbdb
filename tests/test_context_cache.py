"""Context management that keeps the prompt cache (issue 19): hysteresis, oldest-first elision with
a byte-identical head, the prompts still rebuilt from the trajectory, the cache figures each
provider reports read through the loopback server, and the ``cache`` benchmark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentkit.agent import Agent
from agentkit.agent.compactor import ELIDED, ContextManager, ContextPolicy
from agentkit.deepseek.render import render_prompt
from agentkit.render.html import render_html
from agentkit.messages import (AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage,
                               messages_to_openai)
from agentkit.models import catalog
from agentkit.models.base import ModelSettings
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.models.replay import Replay
from agentkit.testing.server import Reply
from agentkit.trajectory import Trajectory, apply_compaction
from bench import cache as bench_cache
from tests.fixtures_agent import turn
from tests.fixtures_cli import run_cli, write_jsonl

TOOLS = [{"type": "function", "function": {"name": "read", "description": "Read one part of the log.",
                                           "parameters": {"type": "object", "properties": {
                                               "part": {"type": "integer"}}, "required": ["part"]}}}]


def _output(i: int, tokens: int = 1000) -> str:
    return bench_cache.observation(tokens, seed=i)


def _step(i: int, tokens: int = 1000) -> list:
    return [AssistantMessage(content=f"Reading part {i}.",
                             tool_calls=[ToolCall(id=f"c{i}", name="read", arguments=json.dumps({"part": i}))]),
            ToolMessage(tool_call_id=f"c{i}", name="read", content=_output(i, tokens))]


HEAD = [SystemMessage(content="You are careful."), UserMessage(content="Read the whole log.")]


async def _grow(mgr: ContextManager, steps: int, tokens: int = 1000) -> tuple[list, list]:
    """Feed ``steps`` turns through ``compact`` as the agent does; (prompts sent, compactions)."""
    context, sent, comps = list(HEAD), [], []
    for i in range(steps):
        context, done = await mgr.compact(context, TOOLS)
        sent.append(list(context))
        comps += [(len(sent) - 1, c) for c in done]
        context = context + _step(i, tokens)
    return sent, comps


# --- hysteresis ------------------------------------------------------------------------------

async def test_hysteresis_compacts_rarely_and_down_to_the_low_water_mark() -> None:
    mgr = ContextManager(ContextPolicy(window=20_000))  # high-water 16,000, low-water 10,000
    assert (mgr.high_water, mgr.low_water) == (16_000, 10_000)
    sent, comps = await _grow(mgr, 48)  # about 50,000 tokens of observations
    assert 3 <= len(comps) <= 6  # in big steps: one per ~6,000 tokens of growth, not one per call
    for call, c in comps:
        assert c.strategy == "elide" and c.tokens_before > mgr.high_water
        assert c.tokens_after <= mgr.low_water == 10_000
        assert mgr.count(sent[call], TOOLS) == c.tokens_after <= mgr.low_water
    # between compactions nothing changes: each prompt extends the one before it
    compacted = {call for call, _ in comps}
    for k in range(1, len(sent)):
        if k not in compacted:
            assert sent[k][:len(sent[k - 1])] == sent[k - 1]
    # one threshold for both (the old policy) compacts before nearly every call once past it
    _, old = await _grow(ContextManager(ContextPolicy(window=20_000, compact_to=0.8)), 48)
    assert len(old) > 4 * len(comps)


async def test_no_compaction_while_the_next_call_fits_with_room_for_max_tokens() -> None:
    mgr = ContextManager(ContextPolicy(window=10_000), reserve=1_000)  # past 80%, but the reply fits
    assert mgr.high_water == 9_000
    context = HEAD + [m for i in range(8) for m in _step(i)]
    tokens = mgr.count(context, TOOLS)
    assert 8_000 < tokens <= 9_000
    new, done = await mgr.compact(context, TOOLS)
    assert done == [] and new is context
    context += _step(8)  # now the reply no longer has 1,000 tokens of room
    assert mgr.count(context, TOOLS) + 1_000 > 10_000
    new, done = await mgr.compact(context, TOOLS)
    assert len(done) == 1 and mgr.count(new, TOOLS) <= mgr.low_water
    # a reserve larger than the room above the high-water mark leaves the mark where it is
    assert ContextManager(ContextPolicy(window=10_000), reserve=5_000).high_water == 8_000
    assert ContextManager(ContextPolicy(window=10_000)).high_water == 8_000  # no reserve known
    with pytest.raises(ValueError, match="compact_to"):
        ContextPolicy(compact_at=0.5, compact_to=0.8)


def test_the_agent_reserves_its_max_tokens() -> None:
    assert Agent(Replay([], name="deepseek-chat")).compactor.reserve == 8_192  # the catalog's output cap
    agent = Agent(Replay([], name="deepseek-chat"), settings=ModelSettings(max_tokens=1_000))
    assert agent.compactor.reserve == 1_000 and agent.compactor.high_water == 131_072 - 1_000
    assert Agent(Replay([], name="deepseek-chat"), context_policy=ContextPolicy(reserve=50_000)).compactor.high_water == \
        int(131_072 * 0.8)


# --- what is elided, and what stays byte-identical --------------------------------------------

async def test_elided_block_is_the_oldest_and_the_head_stays_byte_identical() -> None:
    mgr = ContextManager(ContextPolicy(window=20_000))
    sent, comps = await _grow(mgr, 40)
    assert len(comps) >= 2
    before = sent[comps[0][0] - 1] + _step(comps[0][0] - 1)
    first = comps[0][1]
    after = sent[comps[0][0]]
    # one block at the oldest end: every observation from the first one up to its end is elided
    obs = [i for i, m in enumerate(before) if isinstance(m, ToolMessage)]
    assert first.start == obs[0] and all(after[i].content.startswith("[observation elided")
                                         for i in obs if i < first.end)
    assert after[first.end:] == before[first.end:]  # everything after the block untouched
    assert after[first.start].content == ELIDED.format(n=len(before[first.start].content))
    # the system prompt, the tools block and the task render byte-identically: the prompt up to
    # the first elided observation is the same text, so the provider's cache still hits there
    old_text, new_text = render_prompt(before, tools=TOOLS), render_prompt(after, tools=TOOLS)
    cut = old_text.index(before[first.start].content)
    assert new_text[:cut] == old_text[:cut]
    assert all(a is b for a, b in zip(after[:2], HEAD))
    # the next compaction starts after the block the first one elided, which it keeps as it was
    second_at, second = comps[1]
    assert second.start >= first.end
    assert sent[second_at][:second.start] == sent[second_at - 1][:second.start]


async def test_a_refused_prompt_is_cut_to_the_target_even_below_the_high_water_mark() -> None:
    mgr = ContextManager(ContextPolicy(window=100_000))
    context = HEAD + [m for i in range(8) for m in _step(i)]
    tokens = mgr.count(context, TOOLS)
    new, done = await mgr.compact(context, TOOLS, target=tokens // 2)
    assert len(done) == 1 and mgr.count(new, TOOLS) <= tokens // 2
    assert apply_compaction(context, done[0].model_dump()) == new


# --- the real loop: prompts rebuilt from the trajectory ---------------------------------------

async def test_agent_run_with_hysteresis_rebuilds_every_prompt(tmp_path: Path) -> None:
    turns, outputs = bench_cache.script("uneven", 30)
    run = await bench_cache._run_agent(turns, outputs, 24_000, ContextPolicy(), tmp_path)
    assert run["status"] == "done" and run["rebuilt"]  # Trajectory.model_calls() == what the model got
    assert 1 <= run["compactions"] <= 8
    priced = bench_cache.price(run["calls"], run["completion"])
    assert priced["max_prompt"] <= 0.8 * 24_000 and priced["hit_share"] > 0.65
    traj = Trajectory.load(next(tmp_path.glob("*.jsonl")))
    assert [messages_to_openai(c) for c in traj.model_calls()] == [messages_to_openai(m) for m, _ in run["calls"]]


# --- what the providers report ----------------------------------------------------------------

DS = catalog.lookup("deepseek-chat")
CASES = {
    "deepseek": ("deepseek", "deepseek-chat", {"prompt_tokens": 1_000, "completion_tokens": 20,
                                               "prompt_cache_hit_tokens": 900, "prompt_cache_miss_tokens": 100},
                 900, DS.cost(1_000, 20, 900) if DS else None),
    "deepseek-split-only": ("deepseek", "deepseek-chat", {"prompt_tokens": None, "completion_tokens": 20,
                                                          "total_tokens": 1_020, "prompt_cache_hit_tokens": 900,
                                                          "prompt_cache_miss_tokens": 100},
                            900, DS.cost(1_000, 20, 900) if DS else None),
    "openrouter": ("openrouter", "deepseek/deepseek-chat-v3.1",
                   {"prompt_tokens": 1_000, "completion_tokens": 20, "cost": 0.000123,
                    "prompt_tokens_details": {"cached_tokens": 900}}, 900, 0.000123),
    "openai-style": ("openai-compatible", "deepseek-chat",
                     {"prompt_tokens": 1_000, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 900}},
                     900, DS.cost(1_000, 20, 900) if DS else None),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", list(CASES))
async def test_each_providers_cache_figures_are_recorded_priced_and_shown(case, stream, fake_server, agent_tools,
                                                                         tmp_path) -> None:
    provider, model_id, usage, cached, cost = CASES[case]
    srv = await fake_server([Reply("", tool_calls=[{"name": "echo", "arguments": '{"text": "hi"}'}], usage=usage),
                             Reply("all done", usage=usage, usage_in_separate_chunk=stream)])
    model = OpenAICompatible(model_id, base_url=srv.base_url, provider=provider, api_key="k")
    path = tmp_path / "t.jsonl"
    try:
        result = await Agent(model, agent_tools[:1], trajectory=path, stream=stream).run("say hi")
    finally:
        await model.aclose()
    assert result.status == "done" and result.answer == "all done"
    traj = Trajectory.load(path)
    calls = [r for r in traj.records if r["type"] == "message" and r["message"]["role"] == "assistant"]
    assert len(calls) == 2
    for r in calls:  # per call in the trajectory: the provider's figures and the price from them
        assert r["usage"]["prompt"] == 1_000 and r["usage"]["cached"] == cached
        assert r["cost_usd"] == pytest.approx(cost)
    assert traj.usage.cached == 2 * cached and result.cost_usd == pytest.approx(2 * cost)
    page = render_html(path)
    assert "1,000 → 20 tok · 900 cached (90% hit)" in page  # per step
    assert f"${cost:.4f}" in page
    assert "cached <b>1,800 (90% hit)</b>" in page  # the run


def test_the_run_summary_has_the_cache_hit_share(tmp_path: Path, demo_repo: Path) -> None:
    usage = {"prompt": 2_000, "completion": 10, "cached": 1_500, "cost_usd": 0.0002}
    script = write_jsonl(tmp_path / "script.jsonl", [
        turn("Look first.", ("bash", {"command": "ls"}), usage=usage),
        turn("", ("submit", {"summary": "looked"}), usage=usage)])
    out = tmp_path / "out"
    proc = run_cli("code", "Look around.", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["tokens"]["cached"] == 3_000 and result["cache_hit_share"] == 0.75
    shown = run_cli("code", "Look around.", "--repo", str(demo_repo), "--model", f"replay:{script}",
                    "--out", str(tmp_path / "out2"))
    summary = next(line for line in shown.stdout.splitlines() if line.startswith("status: "))
    assert "cache hits: 75%" in summary


# --- the benchmark ----------------------------------------------------------------------------

def test_common_token_prefix_of_rendered_prompts() -> None:
    a = bench_cache.pieces(render_prompt(HEAD + _step(0), tools=TOOLS))
    b = bench_cache.pieces(render_prompt(HEAD + _step(0) + _step(1), tools=TOOLS))
    assert bench_cache.common_prefix(a, b) == bench_cache.tokens_of(a)  # the whole previous prompt
    c = bench_cache.pieces(render_prompt(HEAD[:1] + [UserMessage(content="Read the whole log!")], tools=TOOLS))
    assert 0 < bench_cache.common_prefix(a, c) < bench_cache.tokens_of(c)


@pytest.mark.skipif(os.environ.get("AGENTKIT_FAST_TESTS") == "1", reason="runs the agent 7 times")
def test_cache_benchmark_tiny() -> None:
    res = bench_cache.run(steps=20, episodes=("even",), windows=(32_000,))
    rows = res["episodes"]["even"]["rows"]
    by = {(r["policy"], r["window"]): r for r in rows}
    ours, old, never = by[("agentkit", 32_000)], by[("one threshold (before)", 32_000)], by[("never compact", None)]
    assert ours["status"] == "done" and ours["rebuilt"] and ours["compactions"] >= 1
    assert old["compactions"] > ours["compactions"] and old["hit_share"] < ours["hit_share"]
    assert never["compactions"] == 0 and by[("never compact", 32_000)]["status"] == "error"
    assert ours["cost_usd"] < old["cost_usd"]
    assert "hit share" in bench_cache.render(res)
    json.dumps(res)  # written as JSON by `python -m bench all`
