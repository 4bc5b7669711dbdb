"""Every mistake a user can fix is one line on stderr saying how, with exit code 2 (no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures_cli import cli_env, run_cli, write_jsonl


def _one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("agentkit: error: "), err
    for n in needles:
        assert n in err, (n, err)
    return err


def test_missing_api_key_names_the_variable(demo_repo: Path, tmp_path: Path) -> None:
    proc = run_cli("code", "fix it", "--repo", str(demo_repo), "--model", "deepseek/deepseek-chat-v3.1",
                   "--provider", "openrouter", "--out", str(tmp_path / "o"))
    _one_line_error(proc, "OPENROUTER_API_KEY")


@pytest.mark.parametrize("provider,var", [("deepseek", "DEEPSEEK_API_KEY"), ("atlascloud", "ATLASCLOUD_API_KEY")])
def test_missing_key_of_other_providers(provider: str, var: str, tmp_path: Path) -> None:
    proc = run_cli("research", "why?", "--provider", provider, "--model", "deepseek-chat", "--out", str(tmp_path / "o"))
    _one_line_error(proc, var)


def test_unknown_model_is_a_usage_error(demo_repo: Path, tmp_path: Path, server_process) -> None:
    body = {"error": {"code": 404, "message": "deepseek/no-such-model is not a valid model ID"}}
    base = server_process([{"fault": {"status": 404, "body": body}}])
    proc = run_cli("code", "fix it", "--repo", str(demo_repo), "--provider", "openai-compatible",
                   "--base-url", base, "--model", "deepseek/no-such-model", "--out", str(tmp_path / "o"))
    _one_line_error(proc, "unknown model", "deepseek/no-such-model", "agentkit models")


def test_docker_not_running(demo_repo: Path, tmp_path: Path) -> None:
    env = cli_env(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    script = write_jsonl(tmp_path / "s.jsonl", [{"content": "done"}])
    proc = run_cli("code", "fix it", "--repo", str(demo_repo), "--model", f"replay:{script}", "--sandbox", "docker",
                   "--out", str(tmp_path / "o"), env=env)
    _one_line_error(proc, "--sandbox docker", "Docker engine", "--sandbox local")


def test_repo_that_is_not_a_directory(tmp_path: Path) -> None:
    script = write_jsonl(tmp_path / "s.jsonl", [{"content": "done"}])
    not_dir = tmp_path / "file.txt"
    not_dir.write_text("x")
    for repo in (str(not_dir), str(tmp_path / "missing")):
        proc = run_cli("code", "fix it", "--repo", repo, "--model", f"replay:{script}", "--out", str(tmp_path / "o"))
        _one_line_error(proc, repo, "not a directory")


def test_task_file_not_found(demo_repo: Path, tmp_path: Path) -> None:
    proc = run_cli("code", f"@{tmp_path}/nope.md", "--repo", str(demo_repo), "--model", "replay:x.jsonl")
    _one_line_error(proc, "nope.md", "not found")


def test_missing_replay_script(demo_repo: Path, tmp_path: Path) -> None:
    proc = run_cli("code", "fix", "--repo", str(demo_repo), "--model", f"replay:{tmp_path}/none.jsonl",
                   "--out", str(tmp_path / "o"))
    _one_line_error(proc, "none.jsonl")


def test_bad_batch_file_names_the_line(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "a", "preset": "research", "task": "q"}) + "\n"
                     + json.dumps({"id": "b", "preset": "cooking", "task": "q"}) + "\n")
    _one_line_error(run_cli("batch", str(tasks), "--out", str(tmp_path / "o")), "tasks.jsonl:2", "preset")
    tasks.write_text(json.dumps({"id": "a", "preset": "code", "task": "q"}) + "\n")
    _one_line_error(run_cli("batch", str(tasks)), "tasks.jsonl:1", "repo")
    _one_line_error(run_cli("batch", str(tmp_path / "absent.jsonl")), "absent.jsonl")


def test_resume_of_a_file_that_is_not_a_run(tmp_path: Path) -> None:
    _one_line_error(run_cli("resume", str(tmp_path / "missing.jsonl")), "missing.jsonl")


def test_bad_flag_values_are_usage_errors(demo_repo: Path) -> None:
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--max-steps", "0")
    assert proc.returncode == 2 and "--max-steps" in proc.stderr
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--sandbox", "vm")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_missing_key_fails_before_writing_anything(demo_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    proc = run_cli("code", "fix it", "--repo", str(demo_repo), "--model", "deepseek/deepseek-chat-v3.1",
                   "--provider", "openrouter", "--out", str(out))
    _one_line_error(proc, "OPENROUTER_API_KEY")
    assert not out.exists()


@pytest.mark.parametrize("status,needle", [(401, "rejected the API key"), (402, "out of credits")])
def test_rejected_key_or_no_credits(status: int, needle: str, demo_repo: Path, tmp_path: Path, server_process) -> None:
    base = server_process([{"fault": {"status": status, "body": {"error": {"code": status, "message": "nope"}}}}])
    proc = run_cli("code", "fix it", "--repo", str(demo_repo), "--provider", "openai-compatible",
                   "--base-url", base, "--model", "deepseek-v3.1", "--out", str(tmp_path / "o"))
    _one_line_error(proc, needle)


def test_image_without_docker_sandbox(demo_repo: Path, tmp_path: Path) -> None:
    script = write_jsonl(tmp_path / "s.jsonl", [{"content": "done"}])
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--model", f"replay:{script}", "--image", "my:img",
                   "--out", str(tmp_path / "o"))
    _one_line_error(proc, "--image", "--sandbox docker")
