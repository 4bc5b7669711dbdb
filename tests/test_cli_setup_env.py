"""`agentkit code --setup-cmd CMD --env KEY=VALUE`: the setup runs once in the sandbox before the agent,
the variables are in the sandbox's environment, and a secret-looking value never reaches the trajectory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures_cli import run_cli, write_jsonl
from tests.fixtures_sandbox import require_docker

SECRET = "s3cret-value-123"
CHECK = 'cat .setup-done; echo "FOO=$FOO"; [ "${API_TOKEN#s3cret}" = -value-123 ] && echo token-ok'


def _script(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "script.jsonl", [
        {"content": "Look.", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": CHECK})}]},
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "looked"})}]},
    ])


def _run(tmp_path: Path, repo: Path, *extra: str):
    out = tmp_path / "out"
    proc = run_cli("code", "look around", "--repo", str(repo), "--model", f"replay:{_script(tmp_path)}",
                   "--setup-cmd", "echo installed > .setup-done", "--env", "FOO=bar baz",
                   "--env", f"API_TOKEN={SECRET}", "--out", str(out), "--json", *extra)
    return proc, out


def _check(proc, out: Path) -> None:
    assert proc.returncode == 0, proc.stderr
    text = (out / "trajectory.jsonl").read_text()
    records = [json.loads(line) for line in text.splitlines()]
    first = next(r for r in records if r.get("type") == "tool_result")
    assert first["observation"]["text"].startswith("installed\nFOO=bar baz\ntoken-ok\n")
    options = records[0]["options"]
    assert options["setup_cmd"] == "echo installed > .setup-done"
    assert options["env"] == {"FOO": "bar baz", "API_TOKEN": "[redacted]"}
    assert SECRET not in text and SECRET not in proc.stderr


def test_setup_cmd_and_env_with_local_sandbox(tmp_path: Path, demo_repo: Path) -> None:
    proc, out = _run(tmp_path, demo_repo)
    _check(proc, out)
    assert not (demo_repo / ".setup-done").exists()  # the run worked on its own copy


def test_failing_setup_cmd_is_a_clear_error(tmp_path: Path, demo_repo: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("code", "look around", "--repo", str(demo_repo), "--model", f"replay:{_script(tmp_path)}",
                   "--setup-cmd", "echo pip says no; exit 3", "--out", str(out))
    assert proc.returncode != 0
    assert "--setup-cmd 'echo pip says no; exit 3' exited with 3" in proc.stderr
    assert "pip says no" in proc.stderr and "Traceback" not in proc.stderr


def test_env_flag_needs_key_value(tmp_path: Path, demo_repo: Path) -> None:
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--env", "NOEQUALS")
    assert proc.returncode == 2 and "is not KEY=VALUE" in proc.stderr


@pytest.mark.docker
def test_setup_cmd_and_env_with_docker(tmp_path: Path, demo_repo: Path) -> None:
    require_docker()
    proc, out = _run(tmp_path, demo_repo, "--sandbox", "docker")
    _check(proc, out)


@pytest.mark.parametrize("sandbox", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_what_setup_writes_is_not_in_the_patch(tmp_path: Path, demo_repo: Path, sandbox: str) -> None:
    """The patch's baseline is taken after --setup-cmd: its build files and its edits to tracked files
    stay out of patch.diff, which holds only the agent's own edit (issue 18). In Docker, setup works on
    the container's copy, which is brought back before the baseline moves."""
    if sandbox == "docker":
        require_docker()
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "Edit.", "tool_calls": [{"name": "bash", "arguments": json.dumps(
            {"command": "echo agent-line >> README.md"})}]},
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "edited"})}]},
    ])
    out = tmp_path / "out"
    setup = "mkdir -p pkg.egg-info && echo x > pkg.egg-info/PKG-INFO && echo setup-line >> ISSUE.md"
    proc = run_cli("code", "edit the readme", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--setup-cmd", setup, "--out", str(out), "--json", "--sandbox", sandbox)
    assert proc.returncode == 0, proc.stderr
    patch = (out / "patch.diff").read_text()
    assert "+agent-line" in patch and "README.md" in patch
    assert "egg-info" not in patch and "ISSUE.md" not in patch and "setup-line" not in patch
    assert json.loads(proc.stdout)["changed_files"] == ["README.md"]


def test_batch_takes_setup_cmd_and_env_per_batch_and_per_task(tmp_path: Path, demo_repo: Path) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"id": "a", "task": "look", "repo": str(demo_repo)},
        {"id": "b", "task": "look", "repo": str(demo_repo), "setup_cmd": "echo own > .setup-done",
         "env": {"FOO": "task foo"}}])
    out = tmp_path / "out"
    proc = run_cli("batch", str(tasks), "--model", f"replay:{_script(tmp_path)}", "--out", str(out),
                   "--setup-cmd", "echo installed > .setup-done", "--env", "FOO=bar baz",
                   "--env", f"API_TOKEN={SECRET}", "--json", "--workers", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    observed = {}
    for task in ("a", "b"):
        text = (out / "tasks" / task / "trajectory.jsonl").read_text()
        assert SECRET not in text
        records = [json.loads(line) for line in text.splitlines()]
        observed[task] = next(r for r in records if r.get("type") == "tool_result")["observation"]["text"]
    assert observed["a"].startswith("installed\nFOO=bar baz\ntoken-ok\n")
    assert observed["b"].startswith("own\nFOO=task foo\ntoken-ok\n")  # the task's own win


def test_batch_setup_fields_are_for_code_tasks(tmp_path: Path) -> None:
    from agentkit.app.batch import load_tasks
    from agentkit.errors import ConfigError

    path = write_jsonl(tmp_path / "t.jsonl", [{"id": "r", "preset": "research", "task": "q", "setup_cmd": "x"}])
    with pytest.raises(ConfigError, match="are for code tasks"):
        load_tasks(path)
