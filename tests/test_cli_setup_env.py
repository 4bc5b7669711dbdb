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


def test_resume_takes_a_redacted_env_value_from_its_own_environment(monkeypatch, capsys) -> None:
    from agentkit.app.runner import _env_for_resume

    monkeypatch.setenv("API_TOKEN", "fresh-token")
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    got = _env_for_resume({"FOO": "bar", "API_TOKEN": "[redacted]", "DB_PASSWORD": "[redacted]"})
    assert got == {"FOO": "bar", "API_TOKEN": "fresh-token"}
    assert "--env DB_PASSWORD was not stored" in capsys.readouterr().err
