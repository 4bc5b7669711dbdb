"""An environment variable's name goes into the sandbox shell's ``export`` line, so a name that is not a
shell name ("X=1; touch pwned; Y") would run as a command there. Names come from --env (checked by the
CLI), from a batch task line's "env", from ``run_code(env=...)`` and from a trajectory's stored options,
which ``agentkit resume`` reads and which may be someone else's (SECURITY.md: its setup and test
commands run only in an isolated sandbox; its env must not be a way round that)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures_cli import run_cli, write_jsonl

EVIL = "X=1; touch {marker}; Y"


async def test_the_sandbox_refuses_a_name_that_is_not_a_shell_name(tmp_path: Path) -> None:
    from agentkit.errors import SandboxError
    from agentkit.sandboxes import LocalSandbox

    marker = tmp_path / "pwned"
    with pytest.raises(SandboxError, match="not a shell variable name"):
        sb = LocalSandbox(workspace=str(tmp_path), isolate=False, env={EVIL.format(marker=marker): "v"})
        await sb.start()  # before the fix: the export line ran the command here
        await sb.close()
    assert not marker.exists()
    from agentkit.sandboxes import DockerSandbox

    with pytest.raises(SandboxError, match="not a shell variable name"):  # before any client or container
        DockerSandbox(env={"A B": "1"})
    ok = LocalSandbox(workspace=str(tmp_path), isolate=False, env={"_OK_1": "a b"})
    await ok.start()
    try:
        assert (await ok.run('echo "$_OK_1"')).output.strip() == "a b"
    finally:
        await ok.close()


def test_resume_refuses_a_trajectorys_env_name_before_any_shell_starts(tmp_path: Path, demo_repo: Path) -> None:
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": "ls"})}]}] * 3)
    out = tmp_path / "run"
    proc = run_cli("code", "look around", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--max-steps", "1", "--out", str(out), "--quiet", "--sandbox", "local")
    assert proc.returncode == 1, proc.stderr
    traj = out / "trajectory.jsonl"
    marker = tmp_path / "pwned"
    lines = traj.read_text().splitlines()
    head = json.loads(lines[0])
    head["options"]["env"] = {EVIL.format(marker=marker): "v"}  # someone else's hand-edited header
    traj.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    proc = run_cli("resume", str(traj), "--max-steps", "3", "--quiet")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "not a shell variable name" in proc.stderr
    assert not marker.exists()


def test_a_batch_task_lines_env_name_is_checked_when_the_file_is_read(tmp_path: Path) -> None:
    from agentkit.app.batch import load_tasks
    from agentkit.errors import ConfigError

    path = write_jsonl(tmp_path / "t.jsonl", [
        {"id": "a", "task": "x", "repo": str(tmp_path), "env": {"GOOD": "1"}},
        {"id": "b", "task": "x", "repo": str(tmp_path), "env": {"A B": "1"}}])
    with pytest.raises(ConfigError, match=r"t\.jsonl:2: .*not a shell variable name"):
        load_tasks(path)


def test_run_code_refuses_a_bad_env_name_as_a_config_error(tmp_path: Path, demo_repo: Path) -> None:
    from agentkit import run_code_sync
    from agentkit.errors import ConfigError

    script = f"replay:{write_jsonl(tmp_path / 's.jsonl', [{'content': 'done'}])}"
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError, match="not a shell variable name"):
        run_code_sync("x", repo=demo_repo, model=script, env={EVIL.format(marker=marker): "v"}, out=tmp_path / "r")
    assert not marker.exists()


SECRET = "s3cret-value-123"


def test_a_secret_env_value_printed_in_the_sandbox_is_not_stored(tmp_path: Path, demo_repo: Path) -> None:
    """--help and the README promise that the values of secret-looking --env keys are not stored in the
    trajectory: that holds for what a command prints too (the model running `env`, a test printing its
    settings), and for result.json's test output."""
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "Look.", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": 'echo "t=$API_TOKEN"'})}]},
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "looked"})}]},
    ])
    out = tmp_path / "out"
    proc = run_cli("code", "look around", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--env", f"API_TOKEN={SECRET}", "--test-cmd", 'echo "test sees $API_TOKEN"',
                   "--out", str(out), "--json", "--keep-workspace")
    assert proc.returncode == 0, proc.stderr
    text = (out / "trajectory.jsonl").read_text()
    assert "t=[redacted]" in text  # the command ran with the value; the record does not hold it
    result = json.loads(proc.stdout)
    assert "test sees" in result["test"]["output"]
    for name in ("trajectory.jsonl", "result.json", "trajectory.html"):
        assert SECRET not in (out / name).read_text(), name
    assert SECRET not in proc.stdout


def test_resume_takes_a_trajectorys_env_only_when_repeated(tmp_path: Path, demo_repo: Path, monkeypatch) -> None:
    """A trajectory's env is not taken on resume: someone else's could set PATH, LD_PRELOAD or BASH_ENV
    for the commands you repeat, or name a secret of yours ("[redacted]" was filled from this
    environment, so GITHUB_TOKEN or a provider key reached the sandbox). Resume names the --env flags
    to repeat, as it does for --network and --base-url, and uses the values given."""
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": "echo FOO=$FOO"})}]}] * 4)
    out = tmp_path / "run"
    proc = run_cli("code", "look around", "--repo", str(demo_repo), "--model", f"replay:{script}", "--env", "FOO=first",
                   "--env", "GITHUB_TOKEN=ghp-old", "--max-steps", "1", "--out", str(out), "--quiet")
    assert proc.returncode == 1, proc.stderr  # the step limit
    traj = out / "trajectory.jsonl"
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-host-secret")
    proc = run_cli("resume", str(traj), "--max-steps", "2", "--quiet")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--env FOO=VALUE --env GITHUB_TOKEN=VALUE" in proc.stderr and "Traceback" not in proc.stderr
    assert "ghp-host-secret" not in traj.read_text() and "echo FOO" in traj.read_text()
    assert traj.read_text().count("FOO=first") == 2  # the one step before the refusal (event and message)
    proc = run_cli("resume", str(traj), "--max-steps", "2", "--quiet", "--env", "FOO=second")
    assert proc.returncode == 1, proc.stderr  # on to the step limit
    text = traj.read_text()
    assert text.count("FOO=second") == 2 and text.count("FOO=first") == 2 and "ghp-host-secret" not in text


def test_a_short_secret_does_not_mangle_the_options_resume_runs_again(tmp_path: Path, demo_repo: Path) -> None:
    """The masking of --env secret values starts after the run header: the stored options (the test
    command, the task) are what resume runs again, and a dev password like "test" is in "pytest"."""
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "a test"})}]}])
    out = tmp_path / "out"
    proc = run_cli("code", "look at the test", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--env", "DB_PASSWORD=test", "--test-cmd", "python -m pytest -q", "--out", str(out), "--quiet")
    assert proc.returncode in (0, 1), proc.stderr
    records = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    assert records[0]["options"]["test_cmd"] == "python -m pytest -q"
    assert records[0]["options"]["task"] == "look at the test"
    assert records[-1]["answer"] == "a [redacted]"  # what the run said afterwards is masked
