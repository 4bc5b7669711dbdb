"""The live view a person can supervise (issue 18, part 2): the screen under a pseudo-terminal shows
the tool calls, the edits as diffs and the status line; retries appear before their wait; --confirm
asks about edits too and needs a terminal; `| head` ends quietly; failed runs leave a whole folder."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentkit.app.progress import Progress
from agentkit.models.base import ModelEvent
from agentkit.presets.base import ToolOptions
from agentkit.presets.toolset import ConfirmShell, StopRun, build_tools
from agentkit.tools.base import ToolContext
from tests.fixtures_cli import cli_env, run_cli, run_on_terminal, write_jsonl


def _screen(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
    """Run ``agentkit ARGS`` on a pseudo-terminal; its exit code and the text it drew (no escapes)."""
    rc, raw = run_on_terminal(*args, cwd=cwd)
    assert "\x1b[" in raw  # drawn, not printed as plain lines
    return rc, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)


def test_terminal_screen_shows_calls_output_diffs_and_status(tmp_path: Path) -> None:
    rc, screen = _screen(["demo", "--out", str(tmp_path / "run")])
    assert rc == 0
    assert "bash python3 -m unittest discover" in screen  # each tool call
    assert "│ Ran 6 tests" in screen  # the head of its output
    assert "+++ b/textstats/stats.py" in screen and "+    if len(ordered) % 2 == 0:" in screen  # the edit
    assert re.search(r"step 6 +[\d,]+ tok +\$0\.0000 +[\d.]+s", screen)  # the status line
    assert "end: done" in screen


def test_retry_is_shown_before_the_wait() -> None:
    """The model reports the retry and then sleeps: the line must be on screen during the sleep."""
    buf = io.StringIO()
    progress = Progress("plain", stream=buf)
    seen_during_wait: list[str] = []

    class Slow:
        name, provider = "deepseek/deepseek-chat-v3.1", "openrouter"

        async def complete(self, messages, tools=None, settings=None, on_event=None):
            on_event(ModelEvent(kind="retry", model=self.name, attempt=1, error="rate limited", status=429,
                                wait_s=4.2))
            seen_during_wait.append(buf.getvalue())  # the wait would start here
            return "reply"

    reported: list[ModelEvent] = []
    model = progress.watch(Slow())
    assert asyncio.run(model.complete([], on_event=reported.append)) == "reply"
    assert "429 from openrouter, retrying in 4.2 s" in seen_during_wait[0]
    assert len(reported) == 1  # the agent still gets it
    from agentkit.events import Retry

    progress.update(Retry(step=1, model="m", attempt=1, status=429, wait_s=4.2))  # the agent's copy, later
    assert buf.getvalue().count("retrying in 4.2 s") == 1


async def test_confirm_asks_about_edits_with_the_diff(local_sandbox) -> None:
    questions: list[str] = []
    answers = iter(["n", "y", "s"])
    (inner,) = build_tools(["str_replace_editor"], ToolOptions())
    editor = ConfirmShell(inner, ask=lambda q: (questions.append(q), next(answers))[1])
    ctx = ToolContext(sandbox=local_sandbox)
    create = {"command": "create", "path": "new.py", "file_text": "x = 1\n"}
    refused = await editor(create, ctx)
    assert refused.is_error and "declined to make this edit" in refused.text
    assert "+x = 1" in questions[0] and "new.py" in questions[0]
    assert not (await editor(create, ctx)).is_error
    await editor({"command": "view", "path": "new.py"}, ctx)  # a look is not asked about
    assert len(questions) == 2
    with pytest.raises(StopRun):
        await editor({"command": "str_replace", "path": "new.py", "old_str": "x = 1", "new_str": "x = 2"}, ctx)
    assert "-x = 1" in questions[2] and "+x = 2" in questions[2]
    (bash,) = build_tools(["bash"], ToolOptions(confirm=True))
    assert isinstance(bash, ConfirmShell)
    assert isinstance(build_tools(["str_replace_editor"], ToolOptions(confirm=True))[0], ConfirmShell)


async def test_confirm_edit_the_command(local_sandbox) -> None:
    (inner,) = build_tools(["bash"], ToolOptions())
    tool = ConfirmShell(inner, ask=lambda q: "e echo changed")
    obs = await tool({"command": "echo original"}, ToolContext(sandbox=local_sandbox))
    assert "changed" in obs.text and "original" not in obs.text.replace("[The user changed the command", "")
    assert "The user changed the command to: echo changed" in obs.text


def test_confirm_without_a_terminal_refuses_to_start(demo_repo: Path, tmp_path: Path) -> None:
    script = write_jsonl(tmp_path / "s.jsonl", [{"content": "done"}])
    proc = run_cli("code", "fix it", "--repo", str(demo_repo), "--model", f"replay:{script}", "--confirm",
                   "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "--confirm" in proc.stderr and "terminal" in proc.stderr
    assert not (tmp_path / "o" / "trajectory.jsonl").exists()


def test_stop_at_a_confirm_question_ends_resumable(demo_repo: Path, tmp_path: Path) -> None:
    """Answering "s" on a terminal ends the run as Ctrl-C does, with how to resume it."""
    script = write_jsonl(tmp_path / "s.jsonl", [
        {"content": "", "tool_calls": [{"id": "c1", "type": "function",
                                        "function": {"name": "bash", "arguments": json.dumps({"command": "ls"})}}]},
        {"content": "done"}])
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agentkit", "code", "fix it", "--repo", str(demo_repo),
                             "--model", f"replay:{script}", "--confirm", "--out", str(tmp_path / "o")],
                            stdin=slave, stdout=slave, stderr=slave, env=cli_env(TERM="dumb"))
    os.close(slave)
    out, deadline = b"", time.monotonic() + 60
    while b"[s]top the run" not in out and time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            out += os.read(master, 4096)
    assert b"[s]top the run" in out, out
    os.write(master, b"s\n")
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:  # until it exits (the pty may outlive it)
        if select.select([master], [], [], 0.2)[0]:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
    assert proc.wait(timeout=5) == 130
    while select.select([master], [], [], 0.2)[0]:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(master)
    text = out.decode("utf-8", "replace")
    assert "agentkit resume" in text and "Traceback" not in text
    assert json.loads((tmp_path / "o" / "result.json").read_text())["status"] == "cancelled"


def test_demo_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    proc = subprocess.run(f"{sys.executable} -m agentkit demo --out {tmp_path / 'run'} | head -n 1",
                          shell=True, capture_output=True, text=True, env=cli_env(), timeout=240)
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "done" and result["test"]["passed"] is True  # the run went on to the end


def test_quiet_still_prints_the_run_folder_and_status(tmp_path: Path) -> None:
    proc = run_cli("demo", "--out", str(tmp_path / "a"), "--quiet")
    assert proc.returncode == 0 and proc.stdout == f"done: {tmp_path / 'a'}\n" and proc.stderr == ""


@pytest.mark.parametrize("status", [401, 404])
def test_auth_or_unknown_model_leaves_a_complete_folder_and_no_tests(status: int, demo_repo: Path, tmp_path: Path,
                                                                    server_process) -> None:
    body = {"error": {"code": status, "message": "deepseek/x is not a valid model ID" if status == 404 else "bad key"}}
    base = server_process([{"fault": {"status": status, "body": body}}])
    marker = tmp_path / "tests-ran"
    proc = run_cli("code", "fix it", "--repo", str(demo_repo), "--provider", "openai-compatible", "--base-url", base,
                   "--model", "deepseek/x", "--test-cmd", f"touch {marker}", "--out", str(tmp_path / "o"),
                   env=cli_env(AGENTKIT_API_KEY="sk-test"))
    assert proc.returncode == 2 and proc.stderr.startswith("agentkit: error: ")
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["status"] == "error" and result["error"] and result["test"] is None
    assert not marker.exists()
