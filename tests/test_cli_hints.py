"""Error hints name only flags the command has, and a 401 names the variable the key came from (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.cli import build_parser, cli_words
from agentkit.errors import AuthError
from agentkit.messages import UserMessage
from agentkit.models import make_model
from agentkit.testing.server import Fault
from tests.fixtures_cli import cli_env, run_cli

RAN_OUT = "openrouter (m) failed with HTTP 503: busy (5 tries); try again later or set fallbacks=[...]"


def _parser(*argv: str):
    return build_parser().parse_args(list(argv)).command_parser


def test_a_hint_names_a_flag_only_where_the_command_has_it() -> None:
    assert cli_words(RAN_OUT, _parser("chat", "x")).endswith("try again later or set --fallback MODEL")
    for argv in (("code", "x"), ("research", "q"), ("batch", "t.jsonl"), ("resume", "t.jsonl")):
        said = cli_words(RAN_OUT, _parser(*argv))
        assert said.endswith("(5 tries); try again later") and "fallback" not in said, argv
    # research has no --searxng-url: the URL goes in --search-backend
    assert cli_words("search_backend='searxng' needs searxng_url=URL.", _parser("research", "q")) == \
        "--search-backend searxng needs --search-backend searxng:URL."
    # resume has no --sandbox
    assert cli_words("sandbox='docker': no dockerd; or run with sandbox='local'", _parser("resume", "t")) == \
        "the Docker sandbox: no dockerd"
    assert cli_words("sandbox='docker': no dockerd; or run with sandbox='local'", _parser("code", "x")) == \
        "--sandbox docker: no dockerd; or run with --sandbox local"
    assert _parser("eval", "qa", "x").prog == "agentkit eval qa"  # the innermost subcommand's parser


def test_code_does_not_suggest_fallback(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    srv = fake_server_thread(responder=lambda request: Fault(status=503, headers={"Retry-After": "0"}))
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--provider", "openai-compatible", "--base-url",
                   srv.base_url, "--model", "m", "--out", str(tmp_path / "out"),
                   env=cli_env(AGENTKIT_API_KEY="sk-test"))
    assert proc.returncode == 1
    error = next(line for line in proc.stdout.splitlines() if line.startswith("error: "))
    assert "try again later" in error and "fallback" not in error, error
    # the run folder keeps the library's words
    assert "fallbacks=[...]" in json.loads((tmp_path / "out" / "result.json").read_text())["error"]


@pytest.mark.parametrize("env, named", [
    ({"AGENTKIT_API_KEY": "sk-generic"}, "AGENTKIT_API_KEY"),
    ({"OPENROUTER_API_KEY": "sk-own", "AGENTKIT_API_KEY": "sk-generic"}, "OPENROUTER_API_KEY"),
])
async def test_a_401_names_the_variable_the_key_came_from(fake_server, monkeypatch, env, named) -> None:
    for var in ("OPENROUTER_API_KEY", "AGENTKIT_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    srv = await fake_server([Fault(status=401, body={"error": {"message": "bad key"}})])
    model = make_model("m", provider="openrouter", base_url=srv.base_url)
    try:
        with pytest.raises(AuthError) as info:
            await model.complete([UserMessage(content="x")])
    finally:
        await model.aclose()
    other = ({"OPENROUTER_API_KEY", "AGENTKIT_API_KEY"} - {named}).pop()
    assert f"check {named}" in str(info.value) and other not in str(info.value)


async def test_a_401_with_an_explicit_key_names_the_argument(fake_server) -> None:
    srv = await fake_server([Fault(status=401, body={"error": {"message": "bad key"}})])
    model = make_model("m", provider="openrouter", base_url=srv.base_url, api_key="sk-x")
    try:
        with pytest.raises(AuthError, match="check the api_key argument"):
            await model.complete([UserMessage(content="x")])
    finally:
        await model.aclose()
