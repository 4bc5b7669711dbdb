"""``agentkit chat`` and ``agentkit models`` against the fake server, in-process and as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from agentkit.cli import main
from agentkit.testing.server import Fault, Reply


def test_chat_streams_reasoning_and_answer(fake_server_thread, capsys):
    srv = fake_server_thread([Reply("The answer is 4.", reasoning="2+2 is 4", chunk_chars=3,
                                    usage={"prompt_tokens": 12, "completion_tokens": 8})])
    rc = main(["chat", "what is 2+2?", "--base-url", srv.base_url, "--model", "deepseek/deepseek-chat-v3.1",
               "--provider", "openrouter", "--thinking", "--system", "be exact", "--max-tokens", "50"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "2+2 is 4" in out and "The answer is 4." in out
    assert out.index("2+2 is 4") < out.index("The answer is 4.")
    assert "12 in / 8 out" in err and "$" in err
    body = srv.requests[0]["json"]
    assert body["stream"] is True and body["reasoning"] == {"enabled": True} and body["max_tokens"] == 50
    assert body["messages"] == [{"role": "system", "content": "be exact"},
                                {"role": "user", "content": "what is 2+2?"}]


def test_chat_json_prints_message_usage_and_cost(fake_server_thread, capsys, tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("from a file")
    srv = fake_server_thread([Reply("ok", tool_calls=[{"name": "bash", "arguments": '{"cmd": "ls"}'}],
                                    usage={"prompt_tokens": 1000, "completion_tokens": 100, "cost": 0.001})])
    rc = main(["chat", f"@{prompt}", "--base-url", srv.base_url, "--model", "m", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["message"]["content"] == "ok" and out["message"]["tool_calls"][0]["function"]["name"] == "bash"
    assert out["usage"]["prompt"] == 1000 and out["cost_usd"] == 0.001 and out["finish_reason"] == "tool_calls"
    assert srv.requests[0]["json"]["messages"][-1]["content"] == "from a file"
    assert "stream" not in srv.requests[0]["json"]


def test_chat_no_stream_and_retry_notice(fake_server_thread, capsys):
    srv = fake_server_thread([Fault(status=503, headers={"Retry-After": "0"}), Reply("fine")])
    rc = main(["chat", "x", "--base-url", srv.base_url, "--model", "m", "--no-stream"])
    out, err = capsys.readouterr()
    assert rc == 0 and "fine" in out and "retry 1" in err and "503" in err


def test_chat_errors_are_one_line_with_exit_codes(fake_server_thread, capsys, monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("AGENTKIT_API_KEY", raising=False)
    assert main(["chat", "x", "--model", "deepseek/deepseek-chat-v3.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "OPENROUTER_API_KEY" in err
    srv = fake_server_thread([Fault(status=401)])
    assert main(["chat", "x", "--base-url", srv.base_url, "--model", "m"]) == 2
    err = capsys.readouterr().err.strip()
    assert "401" in err and "AGENTKIT_API_KEY" in err and err.count("\n") == 0
    srv2 = fake_server_thread([Fault(status=400, body={"error": {"message": "bad field"}})])
    assert main(["chat", "x", "--base-url", srv2.base_url, "--model", "m"]) == 1


def test_models_lists_the_catalog(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for model_id in ("deepseek/deepseek-chat-v3.1:free", "deepseek-reasoner", "deepseek-ai/DeepSeek-V3.1"):
        assert model_id in out
    assert "OPENROUTER_API_KEY" in out
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["models"]) == 9 and {p["name"] for p in data["providers"]} >= {"openrouter", "llamacpp"}


def test_chat_as_a_real_subprocess(fake_server_thread):
    srv = fake_server_thread([Reply("subprocess hello", chunk_chars=4)])
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.run([sys.executable, "-m", "agentkit", "chat", "hi", "--base-url", srv.base_url,
                           "--model", "m"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "subprocess hello" in proc.stdout
