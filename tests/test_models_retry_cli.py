"""Issue 14, model-call side, seen from the outside: ``--request-timeout`` on every command that
calls a model and in the run's recorded settings; a stream retried after it showed output, as
``agentkit chat``, the agent's events, its trajectory and the progress printer see it."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from agentkit.cli import build_parser, main
from agentkit.testing.server import Fault, Reply
from tests.fixtures_cli import run_cli


@pytest.mark.parametrize("argv", [["chat", "x"], ["code", "x"], ["research", "q"], ["batch", "t.jsonl"],
                                  ["resume", "traj.jsonl"]])
def test_every_model_command_takes_request_timeout(argv):
    args = build_parser().parse_args([*argv, "--request-timeout", "42.5"])
    assert args.request_timeout == 42.5
    assert build_parser().parse_args(argv).request_timeout is None  # unset: the settings' default applies
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--request-timeout", "0"])


def test_chat_request_timeout_reaches_the_call(fake_server_thread, capsys):
    """A server that answers 200 then only keep-alives: with the flag the call gives up after 0.5 s
    and the retry gets the answer (without it this would wait 300 s)."""
    srv = fake_server_thread([Fault(kind="keepalive_only", stall_s=math.inf), Reply("after the deadline")])
    rc = main(["chat", "x", "--base-url", srv.base_url, "--model", "m", "--request-timeout", "0.5"])
    out, err = capsys.readouterr()
    assert rc == 0 and "after the deadline" in out
    assert "retry 1" in err and "did not finish within 0.5s" in err


def test_chat_prints_the_final_reply_once_after_a_dropped_stream(fake_server_thread, capsys):
    srv = fake_server_thread([Fault(kind="reset_during", after_chars=12,
                                    reply=Reply("PARTIAL words that never finish", chunk_chars=3)),
                              Reply("The whole answer.", reasoning="thinking it over", chunk_chars=3)])
    rc = main(["chat", "x", "--base-url", srv.base_url, "--model", "m"])
    out, err = capsys.readouterr()
    assert rc == 0 and len(srv.requests) == 2
    assert "PARTIAL" not in out and out.count("The whole answer.") == 1
    assert out.index("thinking it over") < out.index("The whole answer.")
    assert "reply so far dropped" in err


def test_code_request_timeout_is_used_and_recorded(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    srv = fake_server_thread([Fault(kind="keepalive_only", stall_s=math.inf),
                              Reply(tool_calls=[{"name": "submit", "arguments": json.dumps({"summary": "ok"})}])])
    out = tmp_path / "o"
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--provider", "openai-compatible", "--base-url",
                   srv.base_url, "--model", "deepseek-v3.1", "--request-timeout", "0.5", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    run = records[0]
    assert run["settings"]["request_timeout"] == 0.5 and run["options"]["request_timeout"] == 0.5
    retry = next(r for r in records if r["type"] == "event" and r["kind"] == "retry")
    assert "within 0.5s" in retry["error"] and retry["discarded"] is False
    assert records[-1]["status"] == "done" and "retry: " in proc.stdout


def test_run_settings_record_the_default_deadline(tmp_path: Path) -> None:
    from agentkit.agent import Agent
    from agentkit.models.replay import Replay

    script = tmp_path / "s.jsonl"
    script.write_text(json.dumps({"content": "done"}) + "\n")
    Agent(Replay(str(script)), trajectory=tmp_path / "t.jsonl").run_sync("x")
    run = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert run["settings"]["request_timeout"] == 300.0


async def test_agent_stream_retried_after_output(fake_server, tmp_path: Path) -> None:
    """The agent passes the discarding retry on *before* the new attempt's deltas, logs it as an
    event line, and records the final message once."""
    from agentkit import events as ev
    from agentkit.agent import Agent
    from agentkit.models import OpenAICompatible
    from agentkit.models.retry import Backoff

    srv = await fake_server([Fault(kind="error_chunk", error_code=502, after_chars=10,
                                   reply=Reply("SHOWN then broken", chunk_chars=4)),
                             Reply("final answer", chunk_chars=4)])
    model = OpenAICompatible("m", base_url=srv.base_url, backoff=Backoff(base_s=0.001, max_s=0.002))
    agent = Agent(model, stream=True, trajectory=tmp_path / "t.jsonl")
    seen: list[ev.Event] = [e async for e in agent.iter("task")]
    await model.aclose()
    assert agent.result is not None and agent.result.status == "done" and agent.result.answer == "final answer"
    kinds = [e.kind for e in seen]
    i = kinds.index("retry")
    retry = seen[i]
    assert isinstance(retry, ev.Retry) and retry.discarded and "502" in retry.error
    assert "".join(e.text for e in seen[:i] if isinstance(e, ev.ContentDelta)).startswith("SHOWN")
    assert "".join(e.text for e in seen[i:] if isinstance(e, ev.ContentDelta)) == "final answer"
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    events = [r for r in records if r["type"] == "event"]
    assert [(r["kind"], r["discarded"], r["attempt"]) for r in events] == [("retry", True, 1)]
    messages = [r for r in records if r["type"] == "message" and r["message"]["role"] == "assistant"]
    assert [m["message"]["content"] for m in messages] == ["final answer"]


def test_progress_marks_a_dropped_reply() -> None:
    from agentkit import events as ev
    from agentkit.app.progress import Progress

    buf = io.StringIO()
    p = Progress("plain", stream=buf)
    p.update(ev.Retry(step=1, error="stream broke", discarded=True))
    p.update(ev.Retry(step=1, error="HTTP 503"))
    p.update(ev.FallbackUsed(step=1, error="gave up", to_model="b", discarded=True))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    assert "retry:" in lines[0] and "stream broke" in lines[0] and "dropped" in lines[0]
    assert "dropped" not in lines[1] and "dropped" in lines[2]
