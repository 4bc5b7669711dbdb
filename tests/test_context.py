"""Context policy: cutting long observations, eliding old ones, summaries, and their trajectory events."""

from __future__ import annotations

from agentkit.agent import Agent
from agentkit.agent.compactor import (ELIDED, SUMMARY_PREFIX, SUMMARY_REQUEST, ContextManager, ContextPolicy, count_prompt,
                              cut_middle)
from agentkit.messages import (AssistantMessage, SystemMessage, ToolCall, ToolMessage, Usage, UserMessage,
                               messages_to_openai)
from agentkit.models.base import Completion
from agentkit.models.replay import Replay
from agentkit.trajectory import Trajectory, apply_compaction
from tests.fixtures_agent import turn


def test_cut_middle_keeps_head_and_tail_with_marker() -> None:
    text = "".join(f"{i:04d}\n" for i in range(1000))  # 5000 chars
    out = cut_middle(text, 300)
    assert out.startswith(text[:200]) and out.endswith(text[-100:])
    assert "[... 4700 characters left out of 5000 ...]" in out
    assert cut_middle("short", 300) == "short"


def test_count_prompt_grows_with_messages_and_tools() -> None:
    small = [UserMessage(content="hi")]
    big = small + [ToolMessage(tool_call_id="c", content="word " * 500)]
    tools = [{"type": "function", "function": {"name": "t", "description": "a tool " * 50,
                                                "parameters": {"type": "object"}}}]
    assert count_prompt(big) > count_prompt(small) + 400
    assert count_prompt(small, tools) > count_prompt(small)


def _words(chars: int) -> str:
    """Text that costs roughly one token per 4-5 characters (repeated letters would compress)."""
    return " ".join(f"w{j}" for j in range(chars // 5))[:chars]


def _history(turns: int, size: int) -> list:
    msgs = [SystemMessage(content="system"), UserMessage(content="the task")]
    for i in range(turns):
        msgs.append(AssistantMessage(tool_calls=[ToolCall(id=f"c{i}", name="t", arguments="{}")]))
        msgs.append(ToolMessage(tool_call_id=f"c{i}", name="t", content=f"output {i} " + _words(size)))
    return msgs


async def test_elides_oldest_observations_first_and_keeps_recent_turns() -> None:
    msgs = _history(6, 2000)
    mgr = ContextManager(ContextPolicy(window=4000, compact_at=0.8, keep_last_turns=2))
    new, done = await mgr.compact(msgs, None)
    assert [c.strategy for c in done] == ["elide"]
    assert mgr.count(new, None) <= mgr.low_water  # cut down to the low-water mark, not just under the start
    assert new[:2] == msgs[:2] and new[-4:] == msgs[-4:]  # system, task and the last 2 turns untouched
    elided = [m for m in new if isinstance(m, ToolMessage) and m.content.startswith("[observation elided")]
    assert elided and elided[0].tool_call_id == "c0"
    assert elided[0].content == ELIDED.format(n=len(msgs[3].text))
    assert apply_compaction(msgs, done[0].model_dump()) == new  # the event alone rebuilds the context


async def test_nothing_happens_below_the_threshold() -> None:
    msgs = _history(2, 10)
    new, done = await ContextManager(ContextPolicy()).compact(msgs, None)
    assert new == msgs and done == []


async def test_summary_replaces_oldest_history_when_eliding_is_not_enough() -> None:
    msgs = _history(6, 100)
    for m in msgs[2:]:  # long assistant turns: eliding observations cannot save enough
        if isinstance(m, AssistantMessage):
            m.content = _words(1500)
    seen: list = []

    async def summarize(request):
        seen.append(request)
        return AssistantMessage(content="Steps 1-4 read files c0..c3."), {"prompt": 50, "completion": 9}

    mgr = ContextManager(ContextPolicy(window=2500, compact_at=0.8, keep_last_turns=2, summarize=True,
                                       min_elide_chars=50))
    new, done = await mgr.compact(msgs, None, summarize)
    assert [c.strategy for c in done] == ["elide", "summary"]
    # asked as one more user turn of the conversation (here the elided one: the whole one has no room)
    elided = apply_compaction(msgs, done[0].model_dump())
    assert seen[0] == [*elided, UserMessage(content=SUMMARY_REQUEST)]
    assert done[1].summary_after == "elided" and done[1].summary_request == seen[0][-1].to_openai()
    assert new[2] == UserMessage(content=SUMMARY_PREFIX + "Steps 1-4 read files c0..c3.")
    assert new[:2] == msgs[:2] and new[3:] == msgs[-4:]
    rebuilt = msgs
    for c in done:
        rebuilt = apply_compaction(rebuilt, c.model_dump())
    assert rebuilt == new


class SummarizingReplay(Replay):
    """A replay that answers a summary request itself (whenever the agent asks for one)."""

    def __init__(self, turns, summary: str) -> None:
        super().__init__(turns)
        self.summary = summary
        self.summary_calls: list = []
        self.log: list = []  # every call, summary or not, in order

    async def complete(self, messages, tools=None, settings=None, *, on_event=None):
        if messages and messages[-1].text == SUMMARY_REQUEST:
            self.summary_calls.append({"messages": list(messages), "tools": tools})
            self.log.append(self.summary_calls[-1])
            return Completion(message=AssistantMessage(content=self.summary), model=self.name,
                              usage=Usage(prompt=count_prompt(messages, tools), completion=9))
        done = await super().complete(messages, tools, settings, on_event=on_event)
        self.log.append(self.calls[-1])
        return done


async def test_compaction_in_a_run_is_logged_and_reconstructs_every_prompt(tmp_path, agent_tools) -> None:
    # Long turns; eliding is not enough and the model writes a summary, asked inside the conversation.
    turns = [turn(f"step {i} " + _words(2000), ("long_output", {"n": 3000 + i})) for i in range(6)]
    turns += [turn("final answer")]
    model = SummarizingReplay(turns, "Summary: long outputs were read.")
    path = tmp_path / "t.jsonl"
    policy = ContextPolicy(window=8000, compact_at=0.6, keep_last_turns=1, summarize=True)
    agent = Agent(model, agent_tools[4:5], trajectory=path, context_policy=policy)
    result = await agent.run("read a lot")
    assert result.status == "done" and result.answer == "final answer"
    t = Trajectory.load(path)
    comps = [e for e in t.events if e["kind"] == "compaction"]
    assert {e["strategy"] for e in comps} == {"elide", "summary"}
    assert all(e["tokens_after"] < e["tokens_before"] for e in comps)
    summary = [e for e in comps if e["strategy"] == "summary"][0]
    assert summary["summary_message"]["content"] == "Summary: long outputs were read."
    # the summary request went with the run's tools, after the conversation as the last call saw it
    asked = model.summary_calls[0]
    assert asked["tools"] == model.calls[0]["tools"] is not None
    before = model.log[model.log.index(asked) - 1]  # the agent's call just before it
    assert summary["summary_after"] == "context" and asked["messages"][-1].text == SUMMARY_REQUEST
    assert asked["messages"][:len(before["messages"])] == before["messages"]  # its whole prompt: a cache hit
    # every prompt the model got (summary calls aside) is rebuilt exactly from the trajectory
    assert [messages_to_openai(c) for c in t.model_calls()] == \
        [messages_to_openai(c["messages"]) for c in model.calls]
    assert any(SUMMARY_PREFIX in m.text for m in t.context_messages())
    assert len(t.messages) == 2 + 2 * 6 + 1  # the full history is still all there
    assert len(model.calls) == 7 and t.model_turns == 7 + len(model.summary_calls)  # summary calls count
    assert t.usage.total == result.usage.total  # the summary call's tokens are counted
