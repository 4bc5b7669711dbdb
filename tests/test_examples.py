"""Every example in examples/ runs, offline: with a replay model, the fake server, or local pages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentkit import demo
from agentkit.testing.server import Reply
from tests.fixtures_cli import cli_env, run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _py(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env or cli_env(), capture_output=True, text=True,
                          timeout=240)


def test_every_example_is_covered() -> None:
    covered = {"library.py", "code_agent.py", "research_agent.py", "self_hosted.py", "batch/tasks.jsonl",
               "mcp/agent_with_mcp.py", "mcp/notes_server.py"}
    present = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.suffix in (".py", ".jsonl")
               and "replays" not in p.parts}
    assert present == covered


def test_library_example_runs_the_custom_tool(tmp_path: Path) -> None:
    proc = _py(str(EXAMPLES / "library.py"), f"replay:{EXAMPLES / 'replays' / 'library.jsonl'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done | A marathon is about 26.22 miles."
    records = [json.loads(line) for line in (tmp_path / "runs" / "library-example.jsonl").read_text().splitlines()]
    results = [r for r in records if r["type"] == "tool_result"]
    assert results[0]["name"] == "convert" and results[0]["observation"]["text"] == "26.22 mi"
    schema = records[0]["tools"][0]["function"]
    assert schema["parameters"]["properties"]["unit"]["enum"] == ["km", "mi"]
    assert "the unit `value` is given in" in json.dumps(schema)


def test_code_agent_example_fixes_the_demo_repo(tmp_path: Path) -> None:
    proc = _py(str(EXAMPLES / "code_agent.py"), str(demo.REPO), demo.CODE_TASK, f"replay:{demo.CODE_SCRIPT}",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "status: done after 6 steps" in proc.stdout and "tests: passed (exit 0)" in proc.stdout
    assert "changed: textstats/stats.py" in proc.stdout and "+        return (ordered[middle - 1]" in proc.stdout
    run = Path(proc.stdout.split("run folder: ")[1].strip())
    assert (run / "trajectory.jsonl").is_file() and (run / "patch.diff").read_text() in proc.stdout


def test_research_agent_example(tmp_path: Path) -> None:
    with demo.research_site(tmp_path / "site") as site:
        proc = _py(str(EXAMPLES / "research_agent.py"), demo.QUESTION, "--model", f"replay:{site['script']}",
                   "--search-backend", f"fixture:{site['search_fixture']}", "--fetch-allow", "127.0.0.1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "designed by the engineer Ingrid Halvorsen" in proc.stdout
    assert "## Sources" in proc.stdout and "/courier/2019/tide-clock-restored.html" in proc.stdout


def test_batch_example_file(tmp_path: Path) -> None:
    proc = run_cli("batch", str(EXAMPLES / "batch" / "tasks.jsonl"), "--model", f"replay:{demo.CODE_SCRIPT}",
                   "--out", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["finished"] == 2 and summary["tests_passed"] == 2


def test_mcp_example(tmp_path: Path) -> None:
    proc = _py(str(EXAMPLES / "mcp" / "agent_with_mcp.py"), f"replay:{EXAMPLES / 'replays' / 'mcp.jsonl'}",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "MCP tools: notes_server__add_note, notes_server__list_notes" in proc.stdout
    assert json.loads((tmp_path / "notes.json").read_text()) == ["release on Friday"]


def test_self_hosted_example_in_raw_template_mode(tmp_path: Path, fake_server_thread) -> None:
    call = ('<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>bash<｜tool▁sep｜>{"command": "ls *.py | wc -l"}'
            '<｜tool▁call▁end｜><｜tool▁calls▁end｜>')
    srv = fake_server_thread([Reply(text="Let me count them." + call), Reply(text="There are 2 Python files.")])
    proc = _py(str(EXAMPLES / "self_hosted.py"), "--base-url", srv.base_url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done | There are 2 Python files."
    prompts = [r["json"]["prompt"] for r in srv.requests if r["path"].endswith("/completions")]
    assert len(prompts) == 2
    # one BOS: the prompt goes without it and the server adds it
    assert prompts[0].startswith("You are a careful assistant") and "## Tools" in prompts[0]
    assert prompts[0].endswith("<｜User｜>How many Python files are in the current directory?<｜Assistant｜></think>")
    # the real shell output went back in the official tool-output format
    assert "<｜tool▁output▁begin｜>2\n" in prompts[1] or "<｜tool▁output▁begin｜>2<" in prompts[1]


def test_self_hosted_example_in_chat_mode(tmp_path: Path, fake_server_thread) -> None:
    srv = fake_server_thread([Reply(tool_calls=[{"name": "bash", "arguments": json.dumps({"command": "ls *.py | wc -l"})}]),
                              Reply(content="2 Python files.")])
    proc = _py(str(EXAMPLES / "self_hosted.py"), "--base-url", srv.base_url, "--chat", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done | 2 Python files."
    bodies = [r["json"] for r in srv.requests if r["path"].endswith("/chat/completions")]
    assert bodies[0]["chat_template_kwargs"] == {"thinking": False}
