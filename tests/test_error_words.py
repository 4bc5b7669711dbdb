"""Errors name the library's parameter when raised from the library, the flag when the CLI prints them."""

from __future__ import annotations

import pytest

from agentkit.cli import main
from agentkit.errors import ConfigError, ModelError
from agentkit.messages import UserMessage
from agentkit.models import make_model
from agentkit.testing.server import Fault
from tools.search_backends import make_backend


async def test_retries_ran_out_names_fallbacks_in_the_library(fake_server):
    srv = await fake_server([Fault(status=503, headers={"Retry-After": "0"})] * 2)
    model = make_model("m", base_url=srv.base_url, max_retries=1)
    try:
        with pytest.raises(ModelError) as info:
            await model.complete([UserMessage(content="x")])
    finally:
        await model.aclose()
    assert "fallbacks=[...]" in str(info.value) and "--" not in str(info.value)


def test_retries_ran_out_names_the_flag_in_the_cli(fake_server_thread, capsys):
    srv = fake_server_thread([Fault(status=503, headers={"Retry-After": "0"})] * 5)
    assert main(["chat", "x", "--base-url", srv.base_url, "--model", "m", "--no-stream"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "use --fallback" not in err and "--fallback MODEL" in err and "fallbacks=" not in err


def test_searxng_without_url_names_the_parameter_in_the_library():
    with pytest.raises(ConfigError) as info:
        make_backend("searxng")
    assert str(info.value) == "search_backend='searxng' needs searxng_url=URL."


def test_searxng_without_url_names_the_flags_in_the_cli(capsys, tmp_path):
    script = tmp_path / "r.jsonl"
    script.write_text('{"content": "x"}\n')
    rc = main(["research", "q", "--search-backend", "searxng", "--model", f"replay:{script}",
               "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    # research has no --searxng-url flag: the URL goes in --search-backend (issue 18)
    assert rc == 2 and err == "agentkit: error: --search-backend searxng needs --search-backend searxng:URL."


def test_raw_provider_without_base_url():
    with pytest.raises(ConfigError, match=r"base_url=URL"):
        make_model("m", provider="raw")


def test_search_backend_mistakes_name_the_parameters_in_the_library_and_the_flags_in_the_cli():
    from agentkit.cli import cli_words

    with pytest.raises(ConfigError) as info:
        make_backend("local:")
    assert str(info.value) == "local search backend needs a folder: search_backend='local:DIR'."
    assert cli_words(str(info.value)) == "local search backend needs a folder: --search-backend local:DIR."
    from tools.search_backends import SearxngBackend

    with pytest.raises(ConfigError) as info:
        SearxngBackend("ftp://x")
    assert str(info.value).startswith("searxng_url=URL must be an http(s) URL")
    said = cli_words(str(info.value))  # the flag, whichever the CLI has for the SearXNG address
    assert said.startswith("--") and "must be an http(s) URL" in said and "searxng_url" not in said


async def test_batch_and_evaluation_mistakes_name_the_parameters_in_the_library_and_the_flags_in_the_cli(tmp_path):
    """The app layer is also a library (run_batch, run_shards, run_swebench): its errors named flags."""
    from agentkit.app.batch import run_batch, run_shards
    from agentkit.app.eval_swebench import Instance, image_name, select
    from agentkit.app.runner import RunOptions
    from agentkit.cli import cli_words

    with pytest.raises(ConfigError) as info:
        await run_batch([], RunOptions(task=""), tmp_path, workers=0)
    assert str(info.value) == "workers=0 must be at least 1"
    assert cli_words(str(info.value)) == "--workers 0 must be at least 1"
    with pytest.raises(ConfigError) as info:
        run_shards([], [], tmp_path, 0)
    assert cli_words(str(info.value)) == "--processes 0 must be at least 1" and "processes=0" in str(info.value)
    inst = Instance(instance_id="a__b-1", repo="a/b", base_commit="0" * 40, problem_statement="p")
    with pytest.raises(ConfigError) as info:
        select([inst], filter="(")
    assert str(info.value).startswith("filter='(': not a regular expression")
    assert cli_words(str(info.value)).startswith("--filter '(': not a regular expression")
    with pytest.raises(ConfigError) as info:
        image_name(inst, "{nope}")
    assert str(info.value).startswith("image_template='{nope}'")
    assert cli_words(str(info.value)).startswith("--image-template '{nope}'")
