"""`--help` shows every default, and the default cost cap (issue 18): $2 a run for a priced model, shown
at the start, lifted with `--max-cost none`, none for an unpriced one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agentkit.cli import DefaultsFormatter, _subparsers, build_parser
from agentkit.testing.server import Reply
from tests.fixtures_cli import cli_env, run_cli, write_jsonl


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if action.option_strings and action.help != argparse.SUPPRESS and action.nargs != 0:
            yield action


def test_help_shows_every_default() -> None:
    root = build_parser()
    missing = []
    for sub in _subparsers(root):
        formatter = sub._get_formatter()
        assert isinstance(formatter, DefaultsFormatter)
        for action in _options(sub):
            text = formatter._get_help_string(action) or ""
            if "default" not in text.lower():
                missing.append(f"{sub.prog} {action.option_strings[0]}")
    assert missing == []


def test_help_names_the_step_and_cost_defaults(capsys) -> None:
    from agentkit.agent import Limits
    from agentkit.app.runner import DEFAULT_MAX_COST
    from agentkit.cli import common

    assert common.DEFAULT_MAX_COST == DEFAULT_MAX_COST  # the help's number is the runner's
    for command in ("code", "research", "batch"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"(default: {Limits().max_steps})" in text
        assert f"${DEFAULT_MAX_COST:g}" in text and "none" in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["code", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--test-cmd TEST_CMD command run in the sandbox at the end; its result goes in result.json " \
           "(default: none)" in text


def costly(request) -> Reply:
    """$0.9 a call, a different command each time (the same one repeated would end the run)."""
    n = len(request["json"]["messages"])
    return Reply(content="Look.", tool_calls=[{"name": "bash", "arguments": json.dumps({"command": f"echo {n}"})}],
                 usage={"prompt_tokens": 1000, "completion_tokens": 10, "cost": 0.9})


def _code(tmp_path: Path, repo: Path, srv, *extra: str, out: str = "out"):
    return run_cli("code", "look", "--repo", str(repo), "--provider", "openai-compatible", "--base-url",
                   srv.base_url, "--model", "deepseek-v3.1", "--price", "1,1", "--max-steps", "6",
                   "--out", str(tmp_path / out), *extra, env=cli_env(AGENTKIT_API_KEY="sk-test"))


def test_a_priced_model_stops_at_the_default_cap_and_none_lifts_it(tmp_path: Path, demo_repo: Path,
                                                                    fake_server_thread) -> None:
    srv = fake_server_thread(responder=costly)
    proc = _code(tmp_path, demo_repo, srv)
    assert proc.returncode == 1, proc.stderr
    assert "limits: 6 steps, cost cap $2.00 (the default; --max-cost USD or none to change it)" in proc.stdout
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "limit" and result["steps"] == 3  # $0.9 a call: the third passes $2
    header = json.loads((tmp_path / "out" / "trajectory.jsonl").read_text().splitlines()[0])
    assert header["limits"]["max_cost_usd"] == 2.0 and header["options"]["max_cost"] == 2.0

    proc = _code(tmp_path, demo_repo, srv, "--max-cost", "none", out="lifted")
    assert "limits: 6 steps, no cost cap" in proc.stdout
    result = json.loads((tmp_path / "lifted" / "result.json").read_text())
    assert result["status"] == "limit" and result["steps"] == 6  # the step limit, not the cost
    # resume lifts a run's cap with --max-cost none too
    proc = run_cli("resume", str(tmp_path / "out" / "trajectory.jsonl"), "--base-url", srv.base_url,
                   "--max-cost", "none", "--max-steps", "4", env=cli_env(AGENTKIT_API_KEY="sk-test"))
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["steps"] == 4, proc.stderr


def test_an_unpriced_model_runs_without_a_cap_and_says_so(tmp_path: Path, demo_repo: Path) -> None:
    script = write_jsonl(tmp_path / "s.jsonl", [
        {"content": "", "tool_calls": [{"name": "submit", "arguments": json.dumps({"summary": "ok"})}]}])
    proc = run_cli("code", "look", "--repo", str(demo_repo), "--model", f"replay:{script}", "--out",
                   str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert f"limits: 50 steps, no cost cap (replay:{script} has no known price)" in proc.stdout


def test_the_config_file_sets_the_cap_or_lifts_it(tmp_path: Path) -> None:
    from agentkit.config import load_settings

    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    user = tmp_path / "cfg" / "agentkit" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('max_cost = "none"\n')  # the user's own config lifts it
    assert load_settings(tmp_path, env=env)["max_cost"].value == "none"
    user.write_text("max_cost = 5\n")
    assert load_settings(tmp_path, env=env)["max_cost"].value == 5.0
    (tmp_path / "agentkit.toml").write_text("max_cost = 1\n")  # a repository's may only lower it
    assert load_settings(tmp_path, env=env)["max_cost"].value == 1.0
    assert load_settings(tmp_path, env={**env, "AGENTKIT_MAX_COST": "none"})["max_cost"].value == "none"


def test_batch_tasks_stop_at_the_default_cap_unless_the_batch_has_its_own(tmp_path: Path, demo_repo: Path,
                                                                         fake_server_thread) -> None:
    srv = fake_server_thread(responder=costly)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [{"id": "a", "task": "look", "repo": str(demo_repo)}])
    common = ["--provider", "openai-compatible", "--base-url", srv.base_url, "--model", "deepseek-v3.1",
              "--price", "1,1", "--max-steps", "6", "--no-preflight"]
    env = cli_env(AGENTKIT_API_KEY="sk-test")
    proc = run_cli("batch", str(tasks), *common, "--out", str(tmp_path / "b1"), env=env)
    assert "limits: 6 steps per task, each task stops at $2.00 when the model has a known price" in proc.stdout
    result = json.loads((tmp_path / "b1" / "tasks" / "a" / "result.json").read_text())
    assert result["status"] == "limit" and result["steps"] == 3, proc.stdout + proc.stderr
    proc = run_cli("batch", str(tasks), *common, "--max-cost", "none", "--out", str(tmp_path / "b2"), env=env)
    assert "limits: 6 steps per task, no cost cap" in proc.stdout
    assert json.loads((tmp_path / "b2" / "tasks" / "a" / "result.json").read_text())["steps"] == 6
