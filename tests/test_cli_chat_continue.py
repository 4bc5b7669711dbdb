"""``agentkit chat --trajectory`` / ``--continue``: a conversation goes on with a new user turn."""

from __future__ import annotations

import json

from agentkit.cli import main
from agentkit.testing.server import Reply
from agentkit.trajectory import Trajectory


def test_continue_sends_the_first_exchange_and_appends_to_the_file(fake_server_thread, capsys, tmp_path):
    srv = fake_server_thread([Reply("Paris.", usage={"prompt_tokens": 10, "completion_tokens": 2}),
                              Reply("About 2.1 million.", usage={"prompt_tokens": 20, "completion_tokens": 5})])
    traj = tmp_path / "chat.jsonl"
    assert main(["chat", "capital of France?", "--base-url", srv.base_url, "--model", "m",
                 "--system", "be brief", "--trajectory", str(traj)]) == 0
    assert "Paris." in capsys.readouterr().out
    rc = main(["chat", "--continue", str(traj), "its population?", "--base-url", srv.base_url, "--no-stream"])
    assert rc == 0 and "2.1 million" in capsys.readouterr().out
    second = srv.requests[1]["json"]
    assert second["model"] == "m"  # from the trajectory
    assert [(m["role"], m["content"]) for m in second["messages"]] == [
        ("system", "be brief"), ("user", "capital of France?"), ("assistant", "Paris."), ("user", "its population?")]
    t = Trajectory.load(traj, strict=True)
    assert [m.text for m in t.messages][-2:] == ["its population?", "About 2.1 million."]
    assert t.status == "done" and t.answer == "About 2.1 million." and t.steps == 2 and t.usage.prompt == 30


def test_continue_needs_base_url_again_for_a_foreign_endpoint(fake_server_thread, capsys, tmp_path):
    srv = fake_server_thread([Reply("hi")])
    traj = tmp_path / "chat.jsonl"
    assert main(["chat", "hello", "--base-url", srv.base_url, "--model", "m", "--trajectory", str(traj)]) == 0
    capsys.readouterr()
    assert main(["chat", "--continue", str(traj), "again"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--base-url" in err and "API key" in err
    assert len(srv.requests) == 1  # nothing was sent


def test_continue_from_a_damaged_trajectory_is_one_line(capsys, tmp_path):
    traj = tmp_path / "chat.jsonl"
    traj.write_text(json.dumps({"type": "run", "task": "x"}) + "\n"
                    + json.dumps({"type": "message", "step": 0, "message": {"role": "user", "content": 5}}) + "\n")
    assert main(["chat", "--continue", str(traj), "more", "--model", "replay:none.jsonl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(traj) in err and "damaged" in err
    assert main(["chat", "--continue", str(tmp_path / "missing.jsonl"), "more"]) == 2
    assert "no such trajectory" in capsys.readouterr().err
