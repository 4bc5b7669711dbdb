"""The python tool: a fresh process per snippet in a real sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit.tools.base import ToolContext
from agentkit.tools.python import PythonTool


@pytest.fixture
def ctx(any_sandbox: Any) -> ToolContext:
    return ToolContext(sandbox=any_sandbox)


async def test_prints_are_returned(ctx: ToolContext) -> None:
    obs = await PythonTool()({"code": "import math\nprint(math.factorial(20))\nprint('done')"}, ctx)
    assert not obs.is_error
    assert "2432902008176640000\ndone" in obs.text and obs.text.endswith("[exit code: 0]")


async def test_exceptions_and_stderr_are_returned(ctx: ToolContext) -> None:
    code = "import sys\nprint('before')\nsys.stderr.write('warn\\n')\n{}['missing']\n"
    obs = await PythonTool()({"code": code}, ctx)
    assert obs.is_error
    assert "before" in obs.text and "warn" in obs.text
    assert "KeyError: 'missing'" in obs.text and "Traceback" in obs.text
    assert "[exit code: 1]" in obs.text


async def test_each_call_is_a_fresh_process(ctx: ToolContext) -> None:
    tool = PythonTool()
    await tool({"code": "x = 41\nprint(x)"}, ctx)
    obs = await tool({"code": "print(x + 1)"}, ctx)
    assert obs.is_error and "NameError" in obs.text


async def test_code_needs_no_escaping(ctx: ToolContext) -> None:
    code = ("s = '''quotes ' \" $HOME `ls` \\\\ EOF\nAGENTKIT_PY_fake\n'''\n"
            "print(s.splitlines()[0])\nprint(len(s.splitlines()))")
    obs = await PythonTool()({"code": code}, ctx)
    assert not obs.is_error, obs.text
    assert "quotes ' \" $HOME `ls` \\ EOF" in obs.text and "\n2\n" in obs.text


async def test_runs_in_the_workspace(ctx: ToolContext) -> None:
    await ctx.sandbox.write_file("data.csv", "a,b\n1,2\n3,4\n")
    obs = await PythonTool()({"code": "import csv\nrows = list(csv.DictReader(open('data.csv')))\n"
                                      "print(sum(int(r['b']) for r in rows))"}, ctx)
    assert "6" in obs.text and not obs.is_error


async def test_timeout(ctx: ToolContext) -> None:
    obs = await PythonTool(timeout=1.5)({"code": "import time\nprint('tick', flush=True)\ntime.sleep(30)"}, ctx)
    assert obs.is_error and obs.data["timed_out"] and "tick" in obs.text


def test_schema_is_the_fixed_interface() -> None:
    params = PythonTool().parameters
    assert list(params["properties"]) == ["code"] and params["required"] == ["code"]
