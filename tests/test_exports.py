"""Trajectory renderers (DeepSeek text, OpenAI export, Markdown) and the render/view CLI, on
trajectories written by the real writer and by a real agent run through RawDeepSeek."""

from __future__ import annotations

from agentkit.deepseek.special import BOS

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from agentkit.deepseek.render import SearchAgentFormat, render_prompt
from agentkit.render.markdown import render_markdown
from agentkit.render.openai import export_openai, export_openai_jsonl
from agentkit.render.trajectories import render_deepseek


def test_openai_export_is_valid_chat_format_with_compaction_applied(trajectory_file) -> None:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
    from pydantic import TypeAdapter

    path = trajectory_file(6, compaction=True)
    ex = export_openai(path)
    assert set(ex) == {"messages", "tools"}
    TypeAdapter(list[ChatCompletionMessageParam]).validate_python(ex["messages"])
    TypeAdapter(list[ChatCompletionToolParam]).validate_python(ex["tools"])
    roles = [m["role"] for m in ex["messages"]]
    assert roles[:3] == ["system", "user", "user"] and roles[-1] == "assistant"
    assert ex["messages"][2]["content"].startswith("Summary:")  # the compaction's replacement
    assert "Step 1:" not in json.dumps(ex)  # replaced steps are gone
    calls = [c["id"] for m in ex["messages"] for c in m.get("tool_calls") or []]
    results = [m["tool_call_id"] for m in ex["messages"] if m["role"] == "tool"]
    assert calls == results
    assert ex["messages"][-1]["content"] == "Done. The bug is fixed."
    assert "reasoning_content" not in json.dumps(export_openai(path, reasoning=False))


def test_openai_jsonl_one_line_per_run(trajectory_file) -> None:
    a, b = trajectory_file(2), trajectory_file(3, search=True)
    lines = export_openai_jsonl([a, b]).splitlines()
    assert len(lines) == 2 and all(json.loads(x)["messages"] for x in lines)


def test_deepseek_render_is_the_template_of_the_last_context(trajectory_file) -> None:
    path = trajectory_file(4, compaction=True)
    from agentkit.trajectory import Trajectory

    traj = Trajectory.load(path)
    text = render_deepseek(path)
    ctx = traj.context_messages()
    assert text.startswith(render_prompt(ctx, traj.tools))  # what the model saw at its last call…
    assert text.endswith("Done. The bug is fixed.<｜end▁of▁sentence｜>")  # …and what it answered
    assert "Summary: earlier steps listed files." in text and "Step 1:" not in text
    assert "## Tools" in text and "### bash" in text


def test_deepseek_render_of_thinking_run_keeps_current_reasoning(trajectory_file) -> None:
    text = render_deepseek(trajectory_file(3, search=True))
    # the literal "<think>" inside the reasoning is neutralized, so it is no think token (issue 13 §3)
    assert "Thinking about step 3 ＜think＞?</think>Step 3: let me look." in text
    assert text.endswith("All good.</think>Done. The bug is fixed [citation:1].<｜end▁of▁sentence｜>")


def test_markdown_transcript(trajectory_file) -> None:
    md = render_markdown(trajectory_file(3, search=True, long_observation=5000))
    assert md.startswith("# Fix the bug")
    assert md.count("## Step ") == 4  # three tool steps and the answer
    assert "<details><summary>Reasoning</summary>" in md
    assert '"questions": "query 1||other \\"quoted\\""' in md
    assert "— **error**" in md and "## Answer" in md
    assert "1. [Page 1](https://example.org/1)" in md


def test_markdown_fences_survive_backticks_in_outputs(tmp_path: pathlib.Path) -> None:
    from agentkit.messages import ToolMessage, UserMessage
    from agentkit.trajectory import TrajectoryWriter

    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as w:
        w.run(id="x", model="m", provider="p", tools=[], task="t")
        w.message(0, UserMessage(content="t"))
        w.tool_result(1, ToolMessage(tool_call_id="c", name="bash", content="```\ncode\n```"),
                      {"text": "```\ncode\n```"}, 0.1)
    md = render_markdown(path)
    assert "````text\n```\ncode\n```\n````" in md


# --------------------------------------------------------------------------- a real run


async def _agent_run(tmp_path: pathlib.Path, fake_server: Any, *, search: bool) -> tuple[pathlib.Path, Any]:
    from agentkit.tools.base import tool

    from agentkit.agent import Agent
    from agentkit.models.raw_deepseek import RawDeepSeek
    from agentkit.testing.server import Reply

    @tool
    def add(a: int, b: int) -> str:
        """Add two integers.

        Args:
            a: first number
            b: second number
        """
        return str(a + b)

    call = '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>add<｜tool▁sep｜>{"a": 2, "b": 3}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
    if search:
        script = [Reply(text="I need to add.</think>" + call), Reply(text="It is 5.</think>The sum is 5.")]
    else:
        script = [Reply(text="Adding." + call), Reply(text="The sum is 5.")]
    srv = await fake_server(script)
    model = RawDeepSeek("deepseek-ai/DeepSeek-V3.1", srv.base_url, search_format=search)
    path = tmp_path / "run.jsonl"
    agent = Agent(model, tools=[add], system="You add numbers.", thinking=search, trajectory=path)
    try:
        result = await agent.run("What is 2 + 3?")
    finally:
        await model.aclose()
    assert result.status == "done", result
    return path, srv


@pytest.mark.parametrize("search", [False, True])
async def test_real_run_renders_exactly_what_the_model_saw(tmp_path: pathlib.Path, fake_server, search: bool) -> None:
    pytest.importorskip("agentkit.agent")
    path, srv = await _agent_run(tmp_path, fake_server, search=search)
    prompts = [r["json"]["prompt"] for r in srv.requests]
    text = render_deepseek(path)
    assert prompts[-1] and not prompts[-1].startswith(BOS)  # sent without its BOS: the server adds the one
    assert text.startswith(BOS + prompts[-1])  # the last prompt on the wire, byte for byte
    assert text.endswith("The sum is 5.<｜end▁of▁sentence｜>")
    if search:
        assert "I need to add.</think>" in text and text == SearchAgentFormat().render(
            [*_conversation(path)], _tools(path), add_generation_prompt=False)
    else:
        assert "I need" not in text and "<｜Assistant｜></think>Adding.<｜tool▁calls▁begin｜>" in text


def _conversation(path: pathlib.Path) -> list[Any]:
    from agentkit.render.trajectories import conversation, load

    return conversation(load(path))


def _tools(path: pathlib.Path) -> list[dict[str, Any]]:
    from agentkit.trajectory import Trajectory

    return Trajectory.load(path).tools


# --------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentkit", *args], capture_output=True, text=True, timeout=120)


def test_cli_render_formats_and_view(trajectory_file, tmp_path: pathlib.Path) -> None:
    path = str(trajectory_file(3, search=True))
    ds = _cli("render", path, "--format", "deepseek")
    assert ds.returncode == 0 and ds.stdout == render_deepseek(path)
    oa = _cli("render", path, path, "--format", "openai", "-o", str(tmp_path / "sft.jsonl"))
    assert oa.returncode == 0 and len((tmp_path / "sft.jsonl").read_text().splitlines()) == 2
    md = _cli("render", path, "-f", "markdown")
    assert md.returncode == 0 and md.stdout == render_markdown(path)
    page = tmp_path / "page.html"
    view = _cli("view", path, "--no-open", "-o", str(page))
    assert view.returncode == 0 and view.stdout.strip() == page.resolve().as_uri()
    assert page.read_text().startswith("<!doctype html>")
    bad = _cli("render", str(tmp_path / "missing.jsonl"))
    assert bad.returncode == 2 and bad.stderr.startswith("agentkit: error: no trajectory") and "Traceback" not in bad.stderr
