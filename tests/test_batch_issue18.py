"""Issue 18's batch semantics: a re-run takes today's endpoint, model and key (not those stored with a
half-finished task), errors are classified by their type, and batch takes --setup-cmd/--env."""

from __future__ import annotations

import json
from pathlib import Path

from agentkit.testing.server import Reply
from tests.fixtures_cli import cli_env, run_cli, write_jsonl

LOOK = Reply(content="Look.", tool_calls=[{"name": "bash", "arguments": json.dumps({"command": "ls"})}],
             usage={"prompt_tokens": 100, "completion_tokens": 10})
SUBMIT = Reply(content="", tool_calls=[{"name": "submit", "arguments": json.dumps({"summary": "done"})}],
               usage={"prompt_tokens": 100, "completion_tokens": 10})


def _chat_calls(srv) -> list[dict]:
    return [r for r in srv.requests if r["path"].endswith("/chat/completions")]


def test_a_rerun_resumes_a_half_finished_task_with_todays_endpoint_model_and_key(
        tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    old = fake_server_thread(responder=lambda request: LOOK)
    new = fake_server_thread(responder=lambda request: SUBMIT)
    out = tmp_path / "out"
    # a task left half-finished, as a batch killed mid-run leaves it: a trajectory in its folder, no ledger line
    first = run_cli("code", "task 0", "--repo", str(demo_repo), "--provider", "openai-compatible",
                    "--base-url", old.base_url, "--model", "old-model", "--max-steps", "1",
                    "--out", str(out / "tasks" / "t0"), "--quiet", env=cli_env(AGENTKIT_API_KEY="sk-old"))
    assert first.returncode == 1, first.stderr
    before = len(_chat_calls(old))
    assert before == 1
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [{"id": "t0", "preset": "code", "task": "task 0",
                                                    "repo": str(demo_repo)}])
    proc = run_cli("batch", str(tasks), "--provider", "openai-compatible", "--base-url", new.base_url,
                   "--model", "new-model", "--out", str(out), "--json", "--no-preflight",
                   env=cli_env(AGENTKIT_API_KEY="sk-new"))
    summary = json.loads(proc.stdout)
    assert summary["statuses"] == {"done": 1}, proc.stderr
    assert len(_chat_calls(old)) == before  # nothing went to the stored endpoint
    calls = _chat_calls(new)
    assert calls and all(c["json"]["model"] == "new-model" for c in calls)
    assert all(c["headers"].get("authorization") == "Bearer sk-new" for c in calls)
    records = [json.loads(line) for line in (out / "tasks" / "t0" / "trajectory.jsonl").read_text().splitlines()]
    assert any(r["type"] == "event" and r.get("kind") == "resume" for r in records)  # resumed, not restarted
    result = json.loads((out / "tasks" / "t0" / "result.json").read_text())
    assert result["model"] == "new-model"  # the model this session ran with, not the header's


def _ledger(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_errors_are_recorded_and_retried_by_their_type(tmp_path: Path, demo_repo: Path, fake_server_thread) -> None:
    """A 401 on the first call (a key to fix) runs again; a 400 after some steps (the request itself is
    wrong) does not, though its message holds a word ("timeout") the old word rule took as fixable."""
    from agentkit.testing.server import Fault

    def respond(request):
        text = json.dumps(request["json"]["messages"])
        if "task-auth" in text:
            return Fault(status=401, body={"error": {"message": "bad key"}})
        if request["json"]["messages"][-1]["role"] == "tool":
            return Fault(status=400, body={"error": {"message": "invalid timeout parameter"}})
        return LOOK

    srv = fake_server_thread(responder=respond)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"id": "auth", "task": "task-auth", "repo": str(demo_repo)},
        {"id": "bad", "task": "task-bad", "repo": str(demo_repo)}])
    out = tmp_path / "out"
    proc = run_cli("batch", str(tasks), "--provider", "openai-compatible", "--base-url", srv.base_url,
                   "--model", "m", "--out", str(out), "--no-preflight", "--workers", "1",
                   env=cli_env(AGENTKIT_API_KEY="sk-test"))
    assert proc.returncode == 1, proc.stderr
    rows = {r["id"]: r for r in _ledger(out)}
    assert rows["auth"]["error_type"] == "AuthError" and rows["auth"]["error_status"] == 401
    assert rows["auth"]["retry"] is True
    assert rows["bad"]["error_type"] == "BadRequest" and rows["bad"]["error_status"] == 400
    assert rows["bad"]["steps"] >= 1 and rows["bad"]["retry"] is False
    written = json.loads((out / "tasks" / "bad" / "result.json").read_text())
    assert written["error_type"] == "BadRequest" and written["error_status"] == 400
    assert "1 task(s) ended in an error a re-run can fix" in proc.stdout


def test_retry_classification_by_type_with_the_old_word_rule_as_fallback() -> None:
    from agentkit.app.batch import error_type_of, retryable
    from agentkit.errors import AuthError, BadRequest, ConfigError

    def err(kind, steps=3, error="x"):
        return {"status": "error", "error_type": kind, "steps": steps, "error": error}

    for kind in ("AuthError", "PaymentRequired", "RateLimited", "ModelError", "ConfigError", "InternalError"):
        assert retryable(err(kind)), kind
    for kind in ("BadRequest", "ContextWindowExceeded", None):
        assert not retryable(err(kind, steps=0, error="429 timeout")), kind
    assert not retryable({"status": "done", "error_type": None})
    # ledgers written before error_type: no step taken, or the message's words
    assert retryable({"status": "error", "steps": 0, "error": "x"})
    assert retryable({"status": "error", "steps": 4, "error": "rate limit (429)"})
    assert not retryable({"status": "error", "steps": 4, "error": "bad request"})
    assert error_type_of(ConfigError("rejected", error_type="AuthError")) == "AuthError"
    assert error_type_of(AuthError("no")) == "AuthError" and error_type_of(BadRequest("no")) == "BadRequest"
    assert error_type_of(FileNotFoundError("x")) == "OSError" and error_type_of(KeyError("x")) == "InternalError"


def test_a_task_replaces_or_switches_off_the_batchs_setup_cmd(tmp_path: Path) -> None:
    from agentkit.app.batch import BatchTask, task_options
    from agentkit.app.runner import RunOptions

    base = RunOptions(task="", setup_cmd="pip install -e .", env={"A": "1"})
    own = task_options(BatchTask(id="a", task="t", setup_cmd="make"), base, tmp_path)
    none = task_options(BatchTask(id="b", task="t", setup_cmd=""), base, tmp_path)  # before: fell back to the batch's
    same = task_options(BatchTask(id="c", task="t", env={"B": "2"}), base, tmp_path)
    assert (own.setup_cmd, none.setup_cmd, same.setup_cmd) == ("make", None, "pip install -e .")
    assert same.env == {"A": "1", "B": "2"}
