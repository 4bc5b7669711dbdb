"""Settings that stick (issue 18, part 4): flags > AGENTKIT_* env > the repo's agentkit.toml > the
user's config > built-in; ``agentkit config show``; the task from a GitHub issue URL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from agentkit.config import load_settings
from agentkit.errors import ConfigError
from tests.fixtures_cli import cli_env, run_cli


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# (flag, env, repo config, user config) -> (value, source kind); None: that layer does not set it
CASES = [
    ((None, None, None, None), ("deepseek/deepseek-chat-v3.1", "built-in")),
    ((None, None, None, "m-user"), ("m-user", "user")),
    ((None, None, "m-repo", "m-user"), ("m-repo", "repo")),
    ((None, "m-env", "m-repo", "m-user"), ("m-env", "env")),
    (("m-flag", "m-env", "m-repo", "m-user"), ("m-flag", "flag")),
    (("m-flag", None, None, "m-user"), ("m-flag", "flag")),
    ((None, "m-env", None, "m-user"), ("m-env", "env")),
    ((None, None, "m-repo", None), ("m-repo", "repo")),
]


@pytest.mark.parametrize(("layers", "expected"), CASES, ids=[f"{'/'.join(str(x) for x in c[0])}" for c in CASES])
def test_precedence(tmp_path: Path, layers: tuple[Any, ...], expected: tuple[str, str]) -> None:
    flag, env_value, repo_value, user_value = layers
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    repo = tmp_path / "repo"
    repo.mkdir()
    if env_value:
        env["AGENTKIT_MODEL"] = env_value
    if repo_value:
        _write(repo / "agentkit.toml", f'model = "{repo_value}"\n')
    if user_value:
        _write(tmp_path / "cfg" / "agentkit" / "config.toml", f'model = "{user_value}"\nmax-steps = 7\n')
    got = load_settings(repo, {"model": flag}, env)
    assert got["model"].value == expected[0] and got["model"].source.split()[0] == expected[1]
    assert got["max_steps"].value == (7 if user_value else None)


def test_types_unknown_keys_and_a_repo_base_url(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "AGENTKIT_MAX_COST": "0.5", "AGENTKIT_SANDBOX": "docker"}
    got = load_settings(tmp_path, {}, env)
    assert got["max_cost"].value == 0.5 and got["sandbox"].value == "docker"
    with pytest.raises(ConfigError, match="AGENTKIT_MAX_STEPS"):
        load_settings(tmp_path, {}, {**env, "AGENTKIT_MAX_STEPS": "many"})
    _write(tmp_path / "agentkit.toml", 'modle = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'modle'"):
        load_settings(tmp_path, {}, env)
    _write(tmp_path / "agentkit.toml", 'base_url = "https://evil.example/v1"\ntest_cmd = "pytest -q"\n')
    got = load_settings(tmp_path, {}, env)  # a repository does not choose where the API key goes
    assert got["base_url"].value is None and "not taken" in got["base_url"].note
    assert got["test_cmd"].value == "pytest -q"
    _write(tmp_path / "cfg" / "agentkit" / "config.toml", 'base_url = "http://localhost:8000/v1"\n')
    assert load_settings(tmp_path, {}, env)["base_url"].value == "http://localhost:8000/v1"


def test_config_show_and_the_defaults_reach_a_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(repo / "agentkit.toml", 'max_steps = 1\ntest_cmd = "true"\n')
    _write(repo / "code.py", "x = 1\n")
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path / "cfg"), AGENTKIT_MODEL="replay:/dev/null")
    _write(tmp_path / "cfg" / "agentkit" / "config.toml", 'max_steps = 9\nsandbox = "local"\n')
    proc = run_cli("config", "show", "--repo", str(repo), env=env)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line and not line.startswith("#")}
    assert "replay:/dev/null" in lines["model"] and "env AGENTKIT_MODEL" in lines["model"]
    assert f"repo {repo / 'agentkit.toml'}" in lines["max_steps"] and " 1 " in lines["max_steps"]
    assert "user " in lines["sandbox"] and "built-in" in lines["provider"]

    script = tmp_path / "s.jsonl"
    script.write_text(json.dumps({"content": "", "tool_calls": [{"name": "bash", "arguments": '{"command": "ls"}'}]})
                      + "\n")
    env["AGENTKIT_MODEL"] = f"replay:{script}"
    proc = run_cli("code", "look", "--repo", str(repo), "--out", str(tmp_path / "o"), "--json", env=env)
    result = json.loads(proc.stdout)
    assert result["status"] == "limit" and result["steps"] == 1  # max_steps from the repo's agentkit.toml
    assert result["test"] is None or result["test"]["cmd"] == "true"
    options = json.loads((tmp_path / "o" / "trajectory.jsonl").read_text().splitlines()[0])["options"]
    assert options["model"] == f"replay:{script}" and options["max_steps"] == 1 and options["test_cmd"] == "true"
    proc = run_cli("code", "look", "--repo", str(repo), "--out", str(tmp_path / "o2"), "--max-steps", "2",
                   "--model", f"replay:{script}", "--json", env=env)  # flags beat everything
    assert json.loads((tmp_path / "o2" / "trajectory.jsonl").read_text().splitlines()[0])["options"]["max_steps"] == 2


class _Issues(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        _Issues.seen.append({"path": self.path, "auth": self.headers.get("Authorization", "")})
        if self.path == "/repos/octo/proj/issues/7":
            body = json.dumps({"title": "Median is wrong", "body": "For even lengths <b>median</b> is off."}).encode()
            self.send_response(200)
        else:
            body, _ = b'{"message": "Not Found"}', self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def github_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Issues)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Issues.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_task_from_a_github_issue(tmp_path: Path, github_api: str) -> None:
    from agentkit.app.github import fetch_issue, issue_ref

    assert issue_ref("https://github.com/octo/proj/issues/7") == ("octo", "proj", 7)
    assert issue_ref("https://github.com/octo/proj/pull/7") is None and issue_ref("fix it") is None
    text = fetch_issue("octo", "proj", 7, env={"GITHUB_API_URL": github_api, "GITHUB_TOKEN": "ghp_x"})
    assert text.startswith("GitHub issue octo/proj#7: Median is wrong\n\nFor even lengths")
    assert _Issues.seen[-1] == {"path": "/repos/octo/proj/issues/7", "auth": "Bearer ghp_x"}
    with pytest.raises(ConfigError, match="answered 404 .set GITHUB_TOKEN"):
        fetch_issue("octo", "proj", 8, env={"GITHUB_API_URL": github_api})

    repo = tmp_path / "repo"
    _write(repo / "a.py", "x = 1\n")
    script = tmp_path / "s.jsonl"
    script.write_text(json.dumps({"content": "", "tool_calls": [{"name": "submit", "arguments": '{"summary": "ok"}'}]})
                      + "\n")
    env = cli_env(GITHUB_API_URL=github_api)
    env.pop("GITHUB_TOKEN", None)
    proc = run_cli("code", "https://github.com/octo/proj/issues/7", "--repo", str(repo), "--model",
                   f"replay:{script}", "--out", str(tmp_path / "o"), "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    task = json.loads((tmp_path / "o" / "trajectory.jsonl").read_text().splitlines()[0])["task"]
    assert "Median is wrong" in task and "<b>median</b> is off" in task and _Issues.seen[-1]["auth"] == ""


@pytest.mark.parametrize(("repo_line", "user_line", "taken"), [
    ("max_steps = 10", "", 10),  # lower than the built-in 50: taken
    ("max_steps = 500", "", None),  # a cloned repo may not raise it (SECURITY.md: it wants more budget)
    ("max_steps = 500", "max_steps = 1000", 500),  # lower than the user's own
    ("max_cost = 0.5", "", 0.5),
    ('max_cost = "none"', "", None),  # lifting the $2 default cap
    ("max_cost = 40", "", None),
    ('max_cost = "none"', 'max_cost = "none"', "none"),  # the user lifted it already
])
def test_a_repository_may_lower_a_budget_not_raise_it(tmp_path: Path, repo_line: str, user_line: str,
                                                      taken: object) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    key = repo_line.split()[0]
    _write(tmp_path / "agentkit.toml", repo_line + "\n")
    if user_line:
        _write(tmp_path / "cfg" / "agentkit" / "config.toml", user_line + "\n")
    got = load_settings(tmp_path, {}, env)[key]
    if taken is None:
        assert got.source in ("built-in",) and "may lower a budget, not raise it" in got.note
    else:
        assert got.value == taken and got.source.startswith("repo")
