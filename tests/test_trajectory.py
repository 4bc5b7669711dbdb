"""Trajectory JSONL: records flushed as written, secrets scrubbed, cut files load, compaction replays."""

from __future__ import annotations

import json

import pytest

from agentkit.messages import (AssistantMessage, SystemMessage, ToolCall, ToolMessage, Usage, UserMessage)
from agentkit.errors import ConfigError
from agentkit.trajectory import REDACTED, Trajectory, TrajectoryWriter, read_records, scrub


def _write_run(path, secret="sk-live-0123456789abcdef"):
    w = TrajectoryWriter(path, secrets=[secret])
    w.run(id="r1", model="m", provider="p", task="do it",
          settings={"max_tokens": 100, "api_key": secret, "extra_body": {"access_token": "tok-abc-1234"},
                    "headers": {"Authorization": f"Bearer {secret}", "X-Title": "agentkit"}},
          tools=[{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}])
    w.message(0, SystemMessage(content="sys"))
    w.message(0, UserMessage(content="do it"))
    call = ToolCall(id="c1", name="t", arguments='{"x": 1}')
    w.message(1, AssistantMessage(content=None, tool_calls=[call]),
              usage=Usage(prompt=10, completion=5, cost_usd=0.01), latency_s=0.5, cost_usd=0.01)
    w.tool_result(1, ToolMessage(tool_call_id="c1", name="t", content="out"), {"text": "out", "is_error": False},
                  duration_s=0.1)
    w.message(2, AssistantMessage(content="done"), usage=Usage(prompt=20, completion=3, cost_usd=0.02))
    w.end("done", "done", Usage(prompt=30, completion=8, cost_usd=0.03), 0.03)
    w.close()
    return w


def test_records_and_loader(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    _write_run(path)
    recs = read_records(path)
    assert [r["type"] for r in recs] == ["run", "message", "message", "message", "tool_result", "message", "end"]
    assert all(r["v"] == 1 for r in recs)
    t = Trajectory.load(path)
    assert t.status == "done" and t.answer == "done" and t.steps == 2
    assert t.usage.prompt == 30 and t.usage.completion == 8 and t.usage.cost_usd == pytest.approx(0.03)
    assert [m.role for m in t.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert t.messages[2].tool_calls[0].arguments == '{"x": 1}'
    assert t.tools[0]["function"]["name"] == "t"
    # the last call saw everything up to (not including) its own answer
    assert [m.role for m in t.context_messages()] == ["system", "user", "assistant", "tool"]
    assert [len(c) for c in t.model_calls()] == [2, 4]


def test_no_secrets_in_file(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    _write_run(path)
    text = path.read_text()
    assert "sk-live-0123456789abcdef" not in text and "tok-abc-1234" not in text
    run = read_records(path)[0]
    assert run["settings"]["api_key"] == REDACTED
    assert run["settings"]["headers"]["Authorization"] == REDACTED
    assert run["settings"]["max_tokens"] == 100  # "tokens" in a key is not a secret
    assert run["settings"]["headers"]["X-Title"] == "agentkit"


def test_scrub_masks_bearer_inside_strings() -> None:
    assert scrub({"note": "used Bearer abcdefghijklmnop"}) == {"note": f"used Bearer {REDACTED}"}
    assert scrub({"prompt_tokens": 5, "token": None}) == {"prompt_tokens": 5, "token": None}


def test_cut_last_line_is_ignored_and_writer_repairs_it(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    _write_run(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # the end record is cut mid-line (kill -9)
    t = Trajectory.load(path)
    assert t.records[-1]["type"] == "message" and t.status == "incomplete" and t.answer is None
    w = TrajectoryWriter(path)  # appending starts on a fresh line
    w.event("resume")
    w.close()
    recs = read_records(path)
    assert recs[-1]["kind"] == "resume" and recs[-2]["type"] == "message"


def test_corrupt_middle_line_is_an_error(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"type": "run"}\n{broken\n{"type": "end", "status": "done"}\n')
    with pytest.raises(ConfigError, match="line 2 is not valid JSON"):
        read_records(path)


def test_each_record_is_on_disk_when_written(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    w = TrajectoryWriter(path, fsync=True)
    w.run(id="x")
    assert json.loads(path.read_text())["type"] == "run"  # flushed before close
    w.message(0, UserMessage(content="hi"))
    assert len(path.read_text().splitlines()) == 2
    w.close()


def test_compaction_events_rebuild_what_the_model_saw(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    w = TrajectoryWriter(path)
    w.run(id="c")
    w.message(0, SystemMessage(content="s"))
    w.message(0, UserMessage(content="task"))
    for step in (1, 2):
        w.message(step, AssistantMessage(tool_calls=[ToolCall(id=f"c{step}", name="t")]))
        w.tool_result(step, ToolMessage(tool_call_id=f"c{step}", name="t", content="long " * 50),
                      {"text": "long " * 50}, 0.0)
    elided = ToolMessage(tool_call_id="c1", name="t", content="[elided]")
    w.event("compaction", strategy="elide", start=3, end=4, messages=[elided.to_openai()])
    w.message(3, AssistantMessage(content="ok"))
    w.event("compaction", strategy="summary", start=2, end=6,
            messages=[UserMessage(content="summary of steps 1-2").to_openai()], usage={"prompt": 7, "completion": 2})
    w.end("done", "ok", Usage(), 0.0)
    w.close()
    t = Trajectory.load(path)
    calls = t.model_calls()
    assert len(calls) == 3
    assert calls[1][3].content == "long " * 50  # before compaction
    assert calls[2][3].content == "[elided]" and len(calls[2]) == 6
    assert t.context_messages() == calls[2]
    assert [m.text for m in t.next_context()] == ["s", "task", "summary of steps 1-2", "ok"]
    assert len(t.messages) == 7  # the full history is never rewritten
    assert t.usage.prompt == 7  # the summary call's usage counts


def test_tool_result_without_message_is_rebuilt_from_observation(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"v": 1, "type": "run", "id": "x"}\n'
                    '{"v": 1, "type": "tool_result", "step": 1, "tool_call_id": "c", "name": "t",'
                    ' "observation": {"text": "out", "is_error": false}, "duration_s": 0}\n')
    msg = Trajectory.load(path).messages[0]
    assert isinstance(msg, ToolMessage) and msg.tool_call_id == "c" and msg.text == "out" and msg.name == "t"


def test_a_cut_at_any_byte_loads_a_prefix_and_appends_cleanly(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    w = TrajectoryWriter(path)
    w.run(id="u", task="naïve café — 東京 🚀")
    w.message(0, UserMessage(content="naïve café — 東京 🚀"))
    w.message(1, AssistantMessage(content="ok 🚀"), usage=Usage(prompt=1, completion=1))
    w.close()
    data = path.read_bytes()
    full = read_records(path)
    cut_path = tmp_path / "cut.jsonl"
    for n in range(len(data) + 1):  # every possible kill point, mid-character ones included
        cut_path.write_bytes(data[:n])
        got = read_records(cut_path)
        assert got == full[:len(got)]
        whole_line_without_newline = data[n:n + 1] == b"\n" and not data[:n].endswith(b"\n") and n > 0
        assert len(got) == data[:n].count(b"\n") + whole_line_without_newline
        w = TrajectoryWriter(cut_path)
        w.event("resume")
        w.close()
        after = read_records(cut_path)
        assert after[:-1] == got and after[-1]["kind"] == "resume"
