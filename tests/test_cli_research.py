"""`agentkit research` end to end in subprocesses: replay model and fake HTTP server, fixture search
backend, real fetches of pages served on 127.0.0.1, citations and the numbered source list."""

from __future__ import annotations

import json
import re
from pathlib import Path

from agentkit import demo
from agentkit.testing.server import Reply
from tests.fixtures_cli import run_cli, write_jsonl


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]


def test_research_with_replay_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with demo.research_site(tmp_path / "site") as site:
        proc = run_cli("research", demo.QUESTION, "--model", f"replay:{site['script']}",
                       "--search-backend", f"fixture:{site['search_fixture']}", "--fetch-allow", "127.0.0.1",
                       "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"answer:     {out / 'answer.md'}" in proc.stdout
    assert "search: Vellmar tide clock history||Vellmar tide clock restoration accuracy" in proc.stdout
    answer = (out / "answer.md").read_text()
    assert re.search(r"built in 1874\*\* .*\[citation:1\]", answer)
    assert "## Sources" in answer and "3. [Tide clock back on the quay after restoration" in answer
    result = json.loads((out / "result.json").read_text())
    assert [s["n"] for s in result["sources"]] == [1, 2, 3]


def test_research_against_the_fake_server_uses_thinking_and_cites(tmp_path: Path, fake_server_thread) -> None:
    out = tmp_path / "out"
    with demo.research_site(tmp_path / "site") as site:
        page = site["base_url"] + "/courier/2019/tide-clock-restored.html"
        srv = fake_server_thread([
            Reply(reasoning="I should search first.", content="",
                  tool_calls=[{"name": "search", "arguments": json.dumps({"questions": "Vellmar tide clock restoration accuracy"})}]),
            Reply(reasoning="Read the article.", content="",
                  tool_calls=[{"name": "fetch", "arguments": json.dumps({"url": page})}]),
            Reply(reasoning="Done.", content="About four minutes of the tide tables [citation:1]."),
        ])
        proc = run_cli("research", "How accurate is the Vellmar tide clock?", "--provider", "vllm",
                       "--base-url", srv.base_url, "--model", "deepseek-ai/DeepSeek-V3.1",
                       "--search-backend", f"fixture:{site['search_fixture']}", "--fetch-allow", "127.0.0.1",
                       "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "done" and result["steps"] == 3
    assert [s["url"] for s in result["sources"]][:1] == [page]
    answer = (out / "answer.md").read_text()
    assert answer.startswith("About four minutes of the tide tables [citation:1].")
    assert f"1. [Tide clock back on the quay after restoration - Vellmar Courier]({page})" in answer
    bodies = [r["json"] for r in srv.requests if r["path"].endswith("/chat/completions")]
    assert len(bodies) == 3
    # thinking mode on vLLM is switched with chat_template_kwargs; the tools are search + fetch only
    assert all(b["chat_template_kwargs"]["thinking"] is True for b in bodies)
    assert [t["function"]["name"] for t in bodies[0]["tools"]] == ["search", "fetch"]
    system = bodies[0]["messages"][0]
    assert system["role"] == "system" and "[citation:N]" in system["content"]
    # the fetched article reached the model in the third request
    assert "four minutes" in json.dumps(bodies[2]["messages"])


def test_max_searches_budget_is_enforced(tmp_path: Path) -> None:
    turns = [
        {"reasoning": "search", "content": "", "tool_calls": [{"name": "search", "arguments": json.dumps({"questions": "Vellmar tide clock history"})}]},
        {"reasoning": "again", "content": "", "tool_calls": [{"name": "search", "arguments": json.dumps({"questions": "Vellmar tide clock restoration accuracy"})}]},
        {"reasoning": "answer", "content": "Built in 1874 [citation:1]."},
    ]
    script = write_jsonl(tmp_path / "script.jsonl", turns)
    out = tmp_path / "out"
    with demo.research_site(tmp_path / "site") as site:
        proc = run_cli("research", "When was it built?", "--model", f"replay:{script}", "--max-searches", "1",
                       "--search-backend", f"fixture:{site['search_fixture']}", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    results = [r for r in _records(out) if r["type"] == "tool_result"]
    assert not results[0]["observation"].get("is_error")
    assert results[1]["observation"]["is_error"] is True
    assert "search budget" in results[1]["observation"]["text"]
    assert "1. [The Vellmar Tide Clock" in (out / "answer.md").read_text()


def test_python_tool_runs_in_the_sandbox(tmp_path: Path) -> None:
    turns = [
        {"reasoning": "compute", "content": "", "tool_calls": [{"name": "python", "arguments": json.dumps({"code": "print(sum(range(10)) * 3)"})}]},
        {"reasoning": "answer", "content": "The result is 135."},
    ]
    script = write_jsonl(tmp_path / "script.jsonl", turns)
    out = tmp_path / "out"
    fixture = tmp_path / "search.json"
    fixture.write_text("{}")
    proc = run_cli("research", "What is 3 times the sum of 0..9?", "--python", "--model", f"replay:{script}",
                   "--search-backend", f"fixture:{fixture}", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    records = _records(out)
    assert [t["function"]["name"] for t in records[0]["tools"]] == ["search", "fetch", "python"]
    assert "`python` runs Python code" in records[1]["message"]["content"]  # the system prompt mentions it
    result = next(r for r in records if r["type"] == "tool_result")
    assert "135" in result["observation"]["text"] and not result["observation"].get("is_error")
    assert records[0]["sandbox"]["workspace"] == str(out / "workspace")
    assert (out / "answer.md").read_text() == "The result is 135.\n"
