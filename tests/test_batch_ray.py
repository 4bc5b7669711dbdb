"""`agentkit batch --ray`: the same batch as Ray tasks on a local Ray instance the run starts;
results and per-task files come back to the output folder exactly as in a local run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit import demo
from tests.fixtures_cli import run_cli, write_jsonl

pytest.importorskip("ray", reason="Ray is the optional extra agentkit[ray]")


@pytest.mark.slow
def test_batch_on_a_local_ray_instance(tmp_path: Path, demo_repo: Path) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"id": "fix-a", "task": "fix median", "repo": str(demo_repo), "test_cmd": demo.TEST_CMD},
        {"id": "fix-b", "task": "fix median", "repo": str(demo_repo), "test_cmd": demo.TEST_CMD},
    ])
    out = tmp_path / "out"
    proc = run_cli("batch", str(tasks), "--ray", "local", "--workers", "2", "--model", f"replay:{demo.CODE_SCRIPT}",
                   "--out", str(out), "--json", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["finished"] == 2 and summary["statuses"] == {"done": 2} and summary["tests_passed"] == 2
    results = {r["id"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    for tid, r in results.items():
        assert r["worker"]  # ran inside a Ray worker process
        assert r["out"] == str(out / "tasks" / tid)
        folder = out / "tasks" / tid
        assert "ordered[middle - 1]" in (folder / "patch.diff").read_text()
        assert json.loads((folder / "result.json").read_text())["status"] == "done"
        assert (folder / "trajectory.jsonl").read_text().count('"type": "tool_result"') == 6
        assert not (folder / "workspace").exists()  # the working copy stays on the worker
