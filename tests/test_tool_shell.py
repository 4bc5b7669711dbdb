"""The bash tool against real sandboxes: persistence, exit codes, timeouts, truncation, restarts."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit.tools.base import ToolContext
from agentkit.tools.shell import BashTool


@pytest.fixture
def ctx(any_sandbox: Any) -> ToolContext:
    return ToolContext(sandbox=any_sandbox)


async def test_output_and_exit_code(ctx: ToolContext) -> None:
    bash = BashTool()
    ok = await bash({"command": "echo hello; echo oops >&2"}, ctx)
    assert not ok.is_error
    assert "hello" in ok.text and "oops" in ok.text and ok.text.endswith("[exit code: 0]")
    bad = await bash({"command": "ls /definitely/not/here"}, ctx)
    assert bad.text.endswith("[exit code: 2]") and "No such file" in bad.text
    assert bad.data["exit_code"] == 2
    quiet = await bash({"command": "true"}, ctx)
    assert quiet.text == "(no output)\n[exit code: 0]"


async def test_session_persists_cwd_and_env(ctx: ToolContext) -> None:
    bash = BashTool()
    await bash({"command": "mkdir -p sub/dir && cd sub/dir && export GREETING=bonjour"}, ctx)
    obs = await bash({"command": "pwd; echo $GREETING"}, ctx)
    assert "sub/dir" in obs.text and "bonjour" in obs.text


async def test_timeout_keeps_partial_output_and_session(ctx: ToolContext) -> None:
    bash = BashTool(default_timeout=60)
    obs = await bash({"command": "echo started; sleep 30", "timeout": 1.5}, ctx)
    assert obs.is_error and obs.data["timed_out"]
    assert "started" in obs.text and "[exit code" not in obs.text
    assert "timed out after 1.5s" in obs.text and "background" in obs.text
    again = await bash({"command": "echo still alive"}, ctx)
    assert "still alive" in again.text and not again.is_error


async def test_timeout_is_capped_at_the_maximum(ctx: ToolContext) -> None:
    bash = BashTool(max_timeout=2)
    obs = await bash({"command": "sleep 20", "timeout": 500}, ctx)
    assert obs.data["timed_out"] and "timed out after 2s" in obs.text
    assert bash.parameters["properties"]["timeout"]["maximum"] == 2


async def test_long_output_is_truncated_with_a_saved_copy(ctx: ToolContext) -> None:
    bash = BashTool()
    obs = await bash({"command": "seq 1 200000"}, ctx)
    assert obs.data["truncated"] and "Output truncated" in obs.text
    path = obs.data["full_output_path"]
    assert path and path in obs.text
    assert "\n1\n" in "\n" + obs.text and "200000" in obs.text  # head and tail kept
    tail = await bash({"command": f"tail -n 1 {path}"}, ctx)
    assert "200000" in tail.text


async def test_dead_session_is_restarted_and_said(ctx: ToolContext) -> None:
    bash = BashTool()
    await bash({"command": "cd /; export MARK=1"}, ctx)
    died = await bash({"command": "exit 3"}, ctx)
    assert died.data["restarted"] and "new session" in died.text
    obs = await bash({"command": "echo back; echo mark=$MARK"}, ctx)
    assert "back" in obs.text and "mark=\n" in obs.text  # exported variables were reset


async def test_bad_arguments(ctx: ToolContext) -> None:
    bash = BashTool()
    assert (await bash({"command": "  "}, ctx)).is_error
    assert (await bash({"command": "echo", "timeout": "soon"}, ctx)).is_error
    assert (await bash({"command": "echo hi"}, ToolContext())).is_error  # no sandbox


def test_schema_is_the_fixed_interface() -> None:
    params = BashTool().parameters
    assert list(params["properties"]) == ["command", "timeout"] and params["required"] == ["command"]
