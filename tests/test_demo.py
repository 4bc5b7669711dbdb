"""`agentkit demo` and `agentkit demo research` end to end, in subprocesses, with no key and no network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentkit import demo
from tests.fixtures_cli import run_cli


def test_demo_code_fixes_the_bug_and_the_tests_pass(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("demo", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # progress lines (stdout is a pipe: plain mode) name the tools as they run
    assert "bash: python3 -m unittest" in proc.stdout
    assert "str_replace_editor: str_replace textstats/stats.py" in proc.stdout
    # and the end says where everything is
    for name in ("patch.diff", "trajectory.jsonl", "trajectory.html"):
        assert str(out / name) in proc.stdout, name
        assert (out / name).is_file(), name

    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "done" and result["preset"] == "code"
    assert result["test"]["passed"] is True and result["test"]["exit_code"] == 0
    assert "OK" in result["test"]["output"]
    assert result["changed_files"] == ["textstats/stats.py"]
    patch = (out / "patch.diff").read_text()
    assert "+        return (ordered[middle - 1] + ordered[middle]) / 2" in patch

    # the patch applies to a fresh copy of the bundled repo and makes its tests pass there too
    fresh = tmp_path / "fresh"
    subprocess.run(["cp", "-r", str(demo.REPO), str(fresh)], check=True)
    subprocess.run(["git", "apply", str(out / "patch.diff")], cwd=fresh, check=True)
    tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests"], cwd=fresh,
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stderr
    # the bundled repo itself is untouched (the agent worked on a copy)
    assert "return ordered[middle]\n" in (demo.REPO / "textstats" / "stats.py").read_text()

    # the trajectory records the real tool results: a failing run first, a passing one last
    records = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    runs = [r["observation"]["text"] for r in records if r["type"] == "tool_result" and r["name"] == "bash"
            and "Ran 6 tests" in r["observation"]["text"]]
    assert len(runs) == 2 and "FAILED (failures=1)" in runs[0] and "OK" in runs[1]
    html = (out / "trajectory.html").read_text()
    assert html.startswith("<!") and "str_replace_editor" in html
    assert records[0]["type"] == "run" and records[0]["preset"] == "code"
    assert records[-1]["type"] == "end" and records[-1]["status"] == "done"


def test_demo_research_answers_with_citations_from_local_pages(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("demo", "research", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "done" and result["preset"] == "research"
    answer = (out / "answer.md").read_text()
    assert "Ingrid Halvorsen" in answer and "[citation:3]" in answer
    # the numbered source list points at pages the local server really served
    listed = re.findall(r"^(\d+)\. \[(.+?)\]\((http://127\.0\.0\.1:\d+/\S+)\)$", answer, flags=re.M)
    assert [n for n, _, _ in listed] == ["1", "2", "3"]
    assert listed[2][2].endswith("/courier/2019/tide-clock-restored.html")
    # fetch really read the pages: the extracted article text is in the trajectory
    records = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    fetched = [r["observation"]["text"] for r in records if r["type"] == "tool_result" and r["name"] == "fetch"]
    assert len(fetched) == 2 and "copper float" in fetched[0] and "four minutes" in fetched[1]
    assert not any(r["observation"].get("is_error") for r in records if r["type"] == "tool_result")
    # thinking mode: the run record says so and the reasoning was kept
    assert records[0]["thinking"] is True
    assert any((r.get("message") or {}).get("reasoning_content") or (r.get("message") or {}).get("reasoning")
               for r in records if r["type"] == "message")


@pytest.mark.docker
def test_demo_code_in_the_docker_sandbox(tmp_path: Path) -> None:
    from tests.fixtures_sandbox import require_docker

    require_docker()
    out = tmp_path / "run"
    proc = run_cli("demo", "--sandbox", "docker", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "done" and result["test"]["passed"] is True
    # the container's edit came back to the working copy, so the patch shows it
    assert "ordered[middle - 1]" in (out / "patch.diff").read_text()
    assert not (out / "workspace").exists()  # a run that ended done keeps its patch, not its working copy
    records = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    assert records[0]["sandbox"]["type"] == "DockerSandbox"
