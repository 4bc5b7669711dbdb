"""Issue 14: a trajectory may come from someone else. `agentkit resume` must not send the API key to
the URL written in it, nor trust its test command, repository or other reach-widening settings; keys
and URL passwords are masked wherever they are shown or stored; a damaged trajectory is one line
on stderr, never a traceback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from agentkit import demo
from tests.fixtures_cli import cli_env, run_cli, write_jsonl

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


class Listener:
    """A loopback HTTP server that records each request's Authorization header and answers with
    ``status`` and a body that echoes the header back (as a careless server's error would)."""

    def __init__(self, status: int = 401) -> None:
        self.auth: list[str | None] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization")
                listener.auth.append(auth)
                body = json.dumps({"error": {"message": f"invalid key: {auth} (you sent {auth and auth[7:]})",
                                             "code": status}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    srv = Listener()
    yield srv
    srv.close()


def _stopped_run(tmp_path: Path, demo_repo: Path) -> Path:
    """A real code run stopped by its step limit (so resume has work to do); its trajectory."""
    script = write_jsonl(tmp_path / "script.jsonl", [
        {"content": "", "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": "ls"})}]}] * 3)
    out = tmp_path / "run"
    proc = run_cli("code", "look around", "--repo", str(demo_repo), "--model", f"replay:{script}",
                   "--max-steps", "1", "--out", str(out), "--quiet")
    assert proc.returncode == 1, proc.stderr
    return out / "trajectory.jsonl"


def _edit_options(traj: Path, **options: Any) -> None:
    """What someone else's hand-edited trajectory would say in its run header."""
    lines = traj.read_text().splitlines()
    head = json.loads(lines[0])
    head["options"].update(options)
    traj.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")


def _one_line(proc: Any, *needles: str) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


# ------------------------------------------------------------------------------- keys and base URLs
def test_resume_never_sends_the_key_to_a_trajectorys_own_url(tmp_path: Path, demo_repo: Path,
                                                            listener: Listener) -> None:
    traj = _stopped_run(tmp_path, demo_repo)
    _edit_options(traj, model="deepseek/deepseek-chat-v3.1", provider="openrouter", base_url=listener.url, max_steps=5)
    env = cli_env(OPENROUTER_API_KEY=KEY, AGENTKIT_API_KEY=KEY)
    proc = run_cli("resume", str(traj), "--quiet", env=env)
    assert proc.returncode == 2
    _one_line(proc, "--base-url " + listener.url, "API key")
    assert listener.auth == []  # nothing reached the listener
    assert KEY not in proc.stdout + proc.stderr

    # repeated on the command line, it is the user's decision
    again = run_cli("resume", str(traj), "--quiet", "--base-url", listener.url, env=env)
    assert listener.auth and listener.auth[0] == f"Bearer {KEY}"
    # the server echoed the key in its error body: it is masked before it is printed or stored
    assert KEY not in again.stdout + again.stderr and "Traceback" not in again.stderr
    assert "invalid key" in again.stdout + again.stderr
    assert KEY not in traj.read_text()


def test_provider_urls_need_no_confirmation() -> None:
    from agentkit.app.runner import RunOptions, is_own_url

    assert is_own_url(RunOptions(model="deepseek/deepseek-chat-v3.1", base_url="https://openrouter.ai/api/v1/"))
    assert is_own_url(RunOptions(model="deepseek-chat", provider="deepseek", base_url="https://api.deepseek.com/v1"))
    assert is_own_url(RunOptions(model="replay:x.jsonl", base_url="http://127.0.0.1:9/v1"))
    assert is_own_url(RunOptions(model="m"))
    assert not is_own_url(RunOptions(model="m", provider="openrouter", base_url="https://openrouter.ai.evil.example/v1"))
    assert not is_own_url(RunOptions(model="m", provider="vllm", base_url="http://127.0.0.1:9/v1"))
    assert not is_own_url(RunOptions(model="m", provider="raw", base_url="http://127.0.0.1:8000/v1"))


def test_resume_asks_to_confirm_fetch_search_and_in_place_repo(tmp_path: Path, demo_repo: Path) -> None:
    traj = _stopped_run(tmp_path, demo_repo)
    _edit_options(traj, fetch_allow=["10.0.0.0/8"], search_backend="searxng:http://10.0.0.1")
    proc = run_cli("resume", str(traj), "--quiet")
    assert proc.returncode == 2
    _one_line(proc, "--fetch-allow 10.0.0.0/8", "--search-backend searxng:http://10.0.0.1")

    other = tmp_path / "elsewhere"
    other.mkdir()
    _edit_options(traj, fetch_allow=[], search_backend=None, in_place=True, repo=str(other))
    proc = run_cli("resume", str(traj), "--quiet")
    assert proc.returncode == 2
    _one_line(proc, "--repo PATH", "in place")
    assert list(other.iterdir()) == []

    _edit_options(traj, in_place=False, sandbox="none")  # no such sandbox: never "run on the host"
    proc = run_cli("resume", str(traj), "--quiet")
    assert proc.returncode == 2
    _one_line(proc, "'sandbox'")


def test_resume_never_reads_the_trajectorys_repo_path(tmp_path: Path, demo_repo: Path) -> None:
    traj = _stopped_run(tmp_path, demo_repo)
    _edit_options(traj, repo=str(tmp_path / "no-such-repo"), max_steps=3)  # the run's workspace/ is what counts
    proc = run_cli("resume", str(traj), "--json")
    assert proc.returncode == 1, proc.stderr  # the replay script runs out of turns at the limit
    assert json.loads(proc.stdout)["status"] == "limit"


def test_a_symlinked_workspace_or_a_doctored_baseline_is_refused(tmp_path: Path, demo_repo: Path) -> None:
    traj = _stopped_run(tmp_path, demo_repo)
    marker = tmp_path / "pwned"
    config = traj.parent / ".baseline.git" / "config"
    config.write_text(config.read_text() + f"\tfsmonitor = touch {marker}\n")
    proc = run_cli("resume", str(traj), "--quiet")
    assert proc.returncode == 2
    _one_line(proc, "refusing to run git")
    assert not marker.exists()

    config.write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")
    import shutil

    shutil.rmtree(traj.parent / "workspace")
    home = tmp_path / "home"
    home.mkdir()
    (traj.parent / "workspace").symlink_to(home)
    proc = run_cli("resume", str(traj), "--quiet")
    assert proc.returncode == 2
    _one_line(proc, "symbolic link")


def test_a_trajectorys_test_cmd_runs_only_in_an_isolated_sandbox(tmp_path: Path, capsys: Any) -> None:
    from agentkit.presets import get_preset
    from agentkit.app.runner import RunOptions, _may_test, _Prepared

    class Bare:
        isolated = False

    prep = _Prepared(opts=RunOptions(test_cmd="touch /tmp/x"), preset=get_preset("code"), out=tmp_path,
                     test_cmd_given=False)
    assert _may_test(prep, Bare()) is False
    assert "repeat --test-cmd" in capsys.readouterr().err
    Bare.isolated = True
    assert _may_test(prep, Bare()) is True
    Bare.isolated = False
    prep.test_cmd_given = True  # given on this command line: the user's own
    assert _may_test(prep, Bare()) is True


# ------------------------------------------------------------------------------------------ masking
def test_base_url_credentials_are_masked_in_the_trajectory_and_errors(tmp_path: Path, demo_repo: Path) -> None:
    url = "http://alice:hunter2-secret@127.0.0.1:9/v1"  # nothing listens on port 9
    out = tmp_path / "out"
    proc = run_cli("code", "x", "--repo", str(demo_repo), "--provider", "openai-compatible", "--model", "m",
                   "--base-url", url, "--out", str(out), "--quiet", "--json", env=cli_env(AGENTKIT_API_KEY=KEY))
    assert "Traceback" not in proc.stderr
    text = (out / "trajectory.jsonl").read_text() + (out / "result.json").read_text()
    everything = text + proc.stdout + proc.stderr
    assert "hunter2-secret" not in everything and KEY not in everything
    assert "http://alice:***@127.0.0.1:9/v1" in text


def test_redact_masks_keys_tokens_and_url_passwords() -> None:
    from agentkit.redact import mask_url, redact

    assert mask_url("http://user:pass@host:8000/v1") == "http://user:***@host:8000/v1"
    assert mask_url("https://host/v1?api_key=abc123&x=1") == "https://host/v1?api_key=***&x=1"
    assert mask_url("https://openrouter.ai/api/v1") == "https://openrouter.ai/api/v1"
    text = redact(f"bad key {KEY}; Authorization: Bearer abcdefghijkl; mine-1234", ["mine-1234"])
    assert KEY not in text and "abcdefghijkl" not in text and "mine-1234" not in text
    assert redact("sk-learn and a short sk-x stay") == "sk-learn and a short sk-x stay"


@pytest.mark.parametrize("status", [400, 500])
async def test_an_echoed_key_in_an_error_body_is_masked(status: int) -> None:
    from agentkit.errors import ModelError
    from agentkit.messages import UserMessage
    from agentkit.models.openai_compat import OpenAICompatible

    srv = Listener(status)
    try:
        model = OpenAICompatible("m", base_url=srv.url, api_key=KEY, provider="openai-compatible", max_retries=0)
        with pytest.raises(ModelError) as info:
            await model.complete([UserMessage(content="hi")])
        await model.aclose()
    finally:
        srv.close()
    assert srv.auth == [f"Bearer {KEY}"]
    assert KEY not in str(info.value) and "invalid key" in str(info.value)
    assert KEY[7:] not in str(info.value)  # the key without its prefix too


async def test_fallback_chain_trajectory_masks_every_models_key(tmp_path: Path) -> None:
    from agentkit.agent import Agent
    from agentkit.models.fallback import Fallback
    from agentkit.models.openai_compat import OpenAICompatible

    second_key = "zz-second-model-key-42"
    first, second = Listener(500), Listener(500)
    try:
        chain = Fallback([OpenAICompatible("a", base_url=first.url, api_key="sk-first-model-key-0123456789",
                                           provider="openai-compatible", max_retries=0),
                          OpenAICompatible("b", base_url=second.url, api_key=second_key,
                                           provider="openai-compatible", max_retries=0)])
        path = tmp_path / "t.jsonl"
        from agentkit.errors import ModelError

        with pytest.raises(ModelError) as failed:  # a failed run raises, with its result
            await Agent(chain, trajectory=path).run("hi")
        result = failed.value.result
        assert result is not None
        await chain.aclose()
    finally:
        first.close()
        second.close()
    assert result.status == "error" and second.auth == [f"Bearer {second_key}"]
    text = path.read_text()
    assert "invalid key" in text  # the echoed errors are there ...
    assert second_key not in text and "sk-first-model-key" not in text  # ... without the keys


# ------------------------------------------------------------------------------ damaged trajectories
def _records_ok() -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    return [{"v": 1, "type": "run", "id": "r", "model": "m", "tools": [], "task": "t",
             "options": {"preset": "research", "task": "t", "model": f"replay:{demo.CODE_SCRIPT}"}},
            {"v": 1, "type": "message", "step": 0, "message": {"role": "user", "content": "t"}},
            {"v": 1, "type": "message", "step": 1, "message": {"role": "assistant", "content": None,
                                                                "tool_calls": [call]}, "usage": {"prompt": 1}},
            {"v": 1, "type": "tool_result", "step": 1, "tool_call_id": "c1", "name": "bash",
             "observation": {"text": "ok"}, "message": {"role": "tool", "tool_call_id": "c1", "content": "ok"}},
            {"v": 1, "type": "event", "kind": "compaction", "start": 0, "end": 1,
             "messages": [{"role": "user", "content": "s"}]},
            {"v": 1, "type": "end", "status": "limit", "answer": None, "sources": []}]


def _damaged(i: int, key: str, value: Any) -> list[dict[str, Any]]:
    recs = _records_ok()
    recs[i][key] = value
    return recs


DAMAGED: dict[str, Any] = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "bad JSON in the middle": b'{"type": "run", "id": "x"}\nnot json\n{"type": "end", "status": "done"}\n',
    "no run header": b'{"type": "message", "step": 0, "message": {"role": "user", "content": "hi"}}\n',
    "not objects": b'[1, 2]\n"x"\n',
    "tools not a list": _damaged(0, "tools", 5),
    "task not text": _damaged(0, "task", 5),
    "message not an object": _damaged(1, "message", "x"),
    "unknown role": _damaged(1, "message", {"role": "bogus"}),
    "content a number": _damaged(1, "message", {"role": "user", "content": 5}),
    "tool_calls text": _damaged(2, "message", {"role": "assistant", "tool_calls": "zz"}),
    "observation a number": _damaged(3, "observation", 3),
    "compaction start text": _damaged(4, "start", "a"),
    "compaction messages": _damaged(4, "messages", [5]),
    "status a number": _damaged(5, "status", 7),
    "sources text": _damaged(5, "sources", "x"),
}


@pytest.mark.parametrize("command", [["view", "--no-open"], ["render"], ["render", "-f", "html"],
                                     ["render", "-f", "markdown"], ["render", "-f", "openai"], ["resume"]])
def test_damaged_trajectories_are_one_line_errors(tmp_path: Path, command: list[str], capsys: Any) -> None:
    from agentkit.cli import main

    cases = dict(DAMAGED, **{"usage of the wrong type": _damaged(2, "usage", {"prompt": "x"})} if command == ["resume"]
                 else {})
    for name, content in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        path.write_bytes(content if isinstance(content, bytes) else
                         "".join(json.dumps(r) + "\n" for r in content).encode())
        code = main([*command, str(path), *(["-o", str(tmp_path / "page.html")] if command[0] == "view" else [])])
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert len(err.splitlines()) == 1 and err.startswith("agentkit: error: "), (name, err)
        assert "Traceback" not in err
    directory = tmp_path / "a-folder.jsonl"
    directory.mkdir()
    assert main([*command, str(directory)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a directory" in err, err


def test_damaged_trajectory_through_the_real_command(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(_records_ok()[0]) + "\n{oops\n" + json.dumps(_records_ok()[1]) + "\n")
    for command in (["view", "--no-open"], ["render"], ["resume"]):
        proc = run_cli(*command, str(path))
        assert proc.returncode == 2
        _one_line(proc, "line 2 is not valid JSON")
