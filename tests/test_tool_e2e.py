"""End to end: a replayed model fixes a bug in a small repo with the editor and runs its tests
through the shell, in each sandbox; and a search-agent run whose citations resolve to URLs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentkit.agent import Agent, Limits
from agentkit.messages import ToolMessage
from agentkit.models.replay import Replay
from agentkit.testing.web import LocalWebServer
from agentkit.tools import BashTool, FetchTool, FixtureBackend, SearchTool, StrReplaceEditor, SubmitTool
from agentkit.trajectory import Trajectory

STATS = '''"""Small statistics helpers."""


def mean(xs):
    if not xs:
        raise ValueError("mean of an empty list")
    return sum(xs) / (len(xs) - 1)


def spread(xs):
    return max(xs) - min(xs)
'''

TESTS = '''import unittest

from stats import mean, spread


class StatsTest(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(mean([1, 2, 3, 6]), 3)

    def test_spread(self):
        self.assertEqual(spread([4, 9, 1]), 8)


if __name__ == "__main__":
    unittest.main()
'''


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def script(tmp_path: Path) -> Path:
    turns = [
        {"content": "Let me look at the repository.", "tool_calls": [call("str_replace_editor", command="view", path=".")]},
        {"content": None, "tool_calls": [call("bash", command="python3 -m unittest -q 2>&1 | tail -n 5")]},
        {"content": "mean() divides by n-1.", "tool_calls": [call("str_replace_editor", command="view", path="stats.py",
                                                                    view_range=[4, 7])]},
        {"content": None, "tool_calls": [call("str_replace_editor", command="str_replace", path="stats.py",
                                              old_str="    return sum(xs) / (len(xs) - 1)",
                                              new_str="    return sum(xs) / len(xs)")]},
        {"content": None, "tool_calls": [call("bash", command="python3 -m unittest -v")]},
        {"content": "Fixed.", "tool_calls": [call("submit", summary="mean() now divides by len(xs); tests pass.")]},
    ]
    path = tmp_path / "fix.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in turns) + "\n")
    return path


async def test_replay_fixes_a_bug_with_the_editor_and_shell(any_sandbox: Any, tmp_path: Path) -> None:
    await any_sandbox.write_file("stats.py", STATS)
    await any_sandbox.write_file("test_stats.py", TESTS)
    agent = Agent(Replay(script(tmp_path)), [BashTool(), StrReplaceEditor(), SubmitTool()], sandbox=any_sandbox,
                  limits=Limits(max_steps=10), trajectory=tmp_path / "run.jsonl", require_submit=True)
    result = await agent.run("The tests fail. Fix the bug in stats.py.")
    assert result.status == "done", result.error
    assert result.answer == "mean() now divides by len(xs); tests pass."
    fixed = (await any_sandbox.read_file("stats.py")).decode()
    assert "return sum(xs) / len(xs)" in fixed and "len(xs) - 1" not in fixed
    texts = [m.text for m in Trajectory.load(result.trajectory_path).messages if isinstance(m, ToolMessage)]
    assert "stats.py" in texts[0] and "test_stats.py" in texts[0]  # the directory view
    assert "FAILED (failures=1)" in texts[1] and "[exit code: 0]" in texts[1]  # piped through tail
    assert "     4\tdef mean(xs):" in texts[2] and "     8\t" not in texts[2] and "     7\t    return sum(xs) / (len(xs) - 1)" in texts[2]
    assert "has been edited" in texts[3] and "     7\t    return sum(xs) / len(xs)" in texts[3]
    assert "test_mean" in texts[4] and "\nOK\n[exit code: 0]" in texts[4]


async def test_search_agent_run_collects_citable_sources(tmp_path: Path) -> None:
    with LocalWebServer() as web:
        page = web.add_html("/moon", "<html><head><title>The Moon</title></head><body><article><p>"
                            + "The Moon is tidally locked to the Earth, so one face always points at us. " * 5
                            + "</p></article></body></html>")
        backend = FixtureBackend(data={"*": [{"title": "The Moon", "url": page, "snippet": "tidally locked"},
                                            {"title": "Other", "url": "https://example.org/other", "snippet": "x"}]})
        turns = [
            {"content": None, "reasoning": "search first", "tool_calls": [call("search", questions="moon locked||moon face")]},
            {"content": None, "tool_calls": [call("fetch", url=page)]},
            {"content": "The Moon is tidally locked [citation:1]."},
        ]
        fetch = FetchTool(allow=["127.0.0.1"])
        agent = Agent(Replay(turns), [SearchTool(backend), fetch], limits=Limits(max_steps=5),
                      trajectory=tmp_path / "s.jsonl", thinking=True)
        try:
            result = await agent.run("Why do we always see the same side of the Moon?")
        finally:
            await fetch.aclose()
    assert result.status == "done" and "[citation:1]" in (result.answer or "")
    assert [(s.n, s.url) for s in result.sources] == [(1, page), (2, "https://example.org/other")]
    texts = [m.text for m in Trajectory.load(result.trajectory_path).messages if isinstance(m, ToolMessage)]
    assert "[webpage 1 begin]" in texts[0] and "[webpage 2 begin]" in texts[0]
    assert texts[1].startswith("[citation:1] The Moon")
