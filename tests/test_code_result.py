"""The code agent from Python (issue 15, part 4): ``run_code``/``run_code_sync`` return a ``CodeResult``
whose ``patch`` and ``test`` hold what the CLI writes to ``patch.diff`` and ``result.json``, and a
failed run raises its typed error with that result on it, as ``Agent.run`` does. The runner's
errors name the library's parameters; the CLI prints its flags (``cli_words``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit import demo
from agentkit.agent import Limits
from agentkit.errors import AuthError, ConfigError
from agentkit.models import Replay
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.testing.server import Fault
from tests.fixtures_cli import write_jsonl


def test_the_patch_and_the_test_result_come_back_on_the_result(demo_repo: Path, tmp_path: Path) -> None:
    from agentkit import CodeResult, run_code_sync

    events: list[object] = []
    result = run_code_sync(demo.CODE_TASK, repo=demo_repo, model=f"replay:{demo.CODE_SCRIPT}",
                           test_cmd=demo.TEST_CMD, out=tmp_path / "run", limits=Limits(max_steps=20),
                           on_event=events.append)
    assert isinstance(result, CodeResult) and result.status == "done" and result.ok
    assert result.test is not None and result.test.passed and result.test.exit_code == 0
    assert result.test.cmd == demo.TEST_CMD and "OK" in result.test.output
    assert result.changed_files == ["textstats/stats.py"] and result.patch.startswith("diff --git a/textstats/stats.py")
    run = tmp_path / "run"  # the same as the files the CLI writes
    assert result.patch == (run / "patch.diff").read_text(encoding="utf-8")
    saved = json.loads((run / "result.json").read_text(encoding="utf-8"))
    assert result.test.model_dump() == saved["test"] and result.steps == saved["steps"]
    assert result.out == str(run) and result.trajectory_path == str(run / "trajectory.jsonl")
    assert result.messages[0].role == "system" and result.workspace is None  # a done run's copy is removed
    assert events and getattr(events[-1], "kind", None) == "end"
    assert (demo_repo / "textstats" / "stats.py").read_text() == (demo.REPO / "textstats" / "stats.py").read_text()


async def test_failing_tests_are_a_result_not_an_error(demo_repo: Path, tmp_path: Path) -> None:
    from agentkit import run_code

    model = Replay([{"content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "submit", "arguments": json.dumps({"summary": "nothing to do"})}}]}])
    result = await run_code("fix median", repo=demo_repo, model=model, test_cmd=demo.TEST_CMD,
                            out=tmp_path / "run", keep_workspace=True)
    assert result.status == "done" and not result.ok and result.patch == "" and result.changed_files == []
    assert result.test is not None and not result.test.passed and result.test.exit_code == 1
    assert "FAILED" in result.test.output and result.workspace == str(tmp_path / "run" / "workspace")


async def test_a_failed_run_raises_its_typed_error_with_the_code_result(fake_server, demo_repo: Path,
                                                                        tmp_path: Path) -> None:
    from agentkit import CodeResult, run_code

    srv = await fake_server([Fault(status=401, body={"error": {"code": 401, "message": "No auth credentials"}})])
    model = OpenAICompatible("deepseek/deepseek-chat-v3.1", base_url=srv.base_url, provider="openrouter",
                             api_key="sk-or-wrong")
    try:
        with pytest.raises(AuthError) as failed:  # not the CLI's ConfigError: the library's typed error
            await run_code("fix it", repo=demo_repo, model=model, test_cmd=demo.TEST_CMD, out=tmp_path / "run")
    finally:
        await model.aclose()  # run_code left the lent model open
    result = failed.value.result
    assert isinstance(result, CodeResult) and result.status == "error" and result.error_type == "AuthError"
    assert result.test is None and failed.value.trajectory_path == str(tmp_path / "run" / "trajectory.jsonl")
    saved = json.loads((tmp_path / "run" / "result.json").read_text(encoding="utf-8"))
    assert saved["error"] == result.error == str(failed.value)  # stored in the library's words


def test_argument_mistakes_name_the_parameters(demo_repo: Path, tmp_path: Path) -> None:
    from agentkit import run_code_sync

    script = f"replay:{write_jsonl(tmp_path / 's.jsonl', [{'content': 'done'}])}"
    with pytest.raises(ConfigError) as info:
        run_code_sync("x", repo=tmp_path / "missing", model=script, out=tmp_path / "a")
    assert "pass repo=PATH" in str(info.value) and "--" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        run_code_sync("x", repo=demo_repo, model=script, image="python:3.12", out=tmp_path / "b")
    assert str(info.value) == "image=NAME is for the Docker sandbox: add sandbox='docker' or drop image=NAME"
    with pytest.raises(ConfigError) as info:
        run_code_sync("x", repo=demo_repo, model=OpenAICompatible("acme/unpriced", base_url="http://127.0.0.1:9/v1",
                                                                  api_key="k"),
                      limits=Limits(max_cost_usd=1.0), out=tmp_path / "c")
    assert "Limits(max_cost_usd=...) needs a price" in str(info.value) and "prices=(IN, OUT)" in str(info.value)
    with pytest.raises(ConfigError) as info:
        run_code_sync("x", repo=demo_repo, model=script, setup_cmd="exit 3", out=tmp_path / "d")
    assert str(info.value).startswith("setup_cmd='exit 3' exited with 3")


def test_the_cli_says_the_same_mistakes_with_its_flags() -> None:
    from agentkit.cli import cli_words

    assert cli_words("image=NAME is for the Docker sandbox: add sandbox='docker' or drop image=NAME") == \
        "--image NAME is for the Docker sandbox: add --sandbox docker or drop --image NAME"
    assert cli_words("the code agent needs a repository: pass repo=PATH").endswith("pass --repo PATH")
    assert cli_words("setup_cmd='exit 3' exited with 3").startswith("--setup-cmd 'exit 3' exited with 3")
    said = cli_words("Limits(max_cost_usd=...) needs a price, and 'm' has none in the catalog: give one with "
                     "prices=(IN, OUT) (USD per million tokens), run `agentkit models --refresh`, or drop "
                     "Limits(max_cost_usd=...)")
    assert said.startswith("--max-cost needs a price") and "--price IN,OUT" in said and said.endswith("drop --max-cost")
    assert "--max-copy-size (e.g. --max-copy-size 10G, or none)" in cli_words(
        "raise it with max_copy_bytes=BYTES (None: no limit), point repo=PATH at the project itself")


def test_a_stored_error_keeps_the_library_words_and_the_cli_prints_flags(fake_server_thread, demo_repo: Path,
                                                                         tmp_path: Path, capsys) -> None:
    """result.json and the trajectory keep what the library raised; the CLI's summary says the flags."""
    from agentkit.cli import main
    from agentkit.trajectory import Trajectory

    srv = fake_server_thread([Fault(status=503, headers={"Retry-After": "0"})] * 10)
    out = tmp_path / "run"
    rc = main(["code", "fix it", "--repo", str(demo_repo), "--provider", "openai-compatible", "--base-url",
               srv.base_url, "--model", "m", "--out", str(out), "--quiet"])
    saved = json.loads((out / "result.json").read_text(encoding="utf-8"))
    end = Trajectory.load(out / "trajectory.jsonl").end
    assert rc == 1 and saved["status"] == "error" and "fallbacks=[...]" in saved["error"]
    assert end is not None and end["error"] == saved["error"]
    rc = main(["code", "fix it", "--repo", str(demo_repo), "--provider", "openai-compatible", "--base-url",
               srv.base_url, "--model", "m", "--out", str(tmp_path / "run2")])
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error: ")]
    # `agentkit code` has no --fallback (chat has): its summary drops that hint (issue 18)
    assert printed and printed[-1].endswith("try again later") and "fallback" not in printed[-1]


async def test_run_code_sync_works_inside_a_running_event_loop(demo_repo: Path, tmp_path: Path) -> None:
    """A Jupyter cell: the run goes on a private loop in a worker thread, as Agent.run_sync's does."""
    from agentkit import run_code_sync

    result = run_code_sync(demo.CODE_TASK, repo=demo_repo, model=f"replay:{demo.CODE_SCRIPT}",
                           test_cmd=demo.TEST_CMD, out=tmp_path / "run")
    assert result.ok and result.changed_files == ["textstats/stats.py"]
