"""User code type-checks against agentkit (issue 15, part 1): ``mypy --strict`` passes on
``examples/`` and catches typos in user code (a misspelled keyword, attribute or argument type),
and ``@tool`` keeps the wrapped function's signature.

agentkit's sources are laid out as the installed package (``tools/`` and ``sandboxes/`` become
``agentkit.tools``/``agentkit.sandboxes`` through setuptools' ``package-dir``, which an editable
install maps with an import hook that mypy cannot read), so mypy reads them through a folder of
links with that layout; ``--follow-imports=silent`` checks the user code, not agentkit's own."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mypy(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    farm = tmp_path / "pkg" / "agentkit"
    farm.mkdir(parents=True)
    for entry in (ROOT / "agentkit").iterdir():
        (farm / entry.name).symlink_to(entry)
    (farm / "tools").symlink_to(ROOT / "tools")
    (farm / "sandboxes").symlink_to(ROOT / "sandboxes")
    env = {**os.environ, "MYPYPATH": str(farm.parent)}
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                           *map(str, files)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_examples_pass_mypy_strict_and_typos_are_caught(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy comes with the test extra")
    typos = tmp_path / "typos.py"
    typos.write_text('''from agentkit import Agent, tool
from agentkit.models import Replay


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


print(Agent(Replay([]), max_stepz=3).run_sync("x").anwser)
Agent(Replay([]), tools=[add]).run_sync(42)
add("1", 2)
reveal_type(add)
print([s.urll for s in Agent(Replay([])).run_sync("x").sources])
''', encoding="utf-8")
    examples = sorted((ROOT / "examples").rglob("*.py"))
    proc = _mypy(tmp_path, *examples, typos)
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert [e for e in errors if "typos.py" not in e] == [], out  # the examples are clean
    assert any('Unexpected keyword argument "max_stepz"' in e for e in errors), out
    assert any('has no attribute "anwser"' in e for e in errors), out
    assert any('"run_sync" of "Agent" has incompatible type "int"' in e for e in errors), out
    assert any('incompatible type "str"; expected "int"' in e for e in errors), out  # add("1", 2)
    assert "FunctionTool[[a: int, b: int], int]" in out, out  # the decorated object keeps its signature
    assert any('"Source" has no attribute "urll"' in e for e in errors), out  # RunResult.sources is typed


def test_a_tool_is_called_like_its_function() -> None:
    from agentkit import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @tool
    async def twice(a: int) -> int:
        """Double a number."""
        return 2 * a

    assert add(1, 2) == 3 and inspect.signature(add) == inspect.signature(add.fn)
    assert list(inspect.signature(add).parameters) == ["a", "b"]
    coro = twice(4)
    assert inspect.iscoroutine(coro)
    import asyncio

    assert asyncio.run(coro) == 8
    assert add.name == "add" and add.__wrapped__ is add.fn  # type: ignore[attr-defined]


def test_presets_and_the_code_agent_from_python_are_typed(tmp_path: Path) -> None:
    """``Preset.build_agent`` returns an ``Agent`` (it returned ``Any``, so nothing after it was
    checked), and ``run_code_sync`` keeps ``run_code``'s keyword-only signature and ``CodeResult``."""
    pytest.importorskip("mypy", reason="mypy comes with the test extra")
    user = tmp_path / "user.py"
    user.write_text('''from agentkit import run_code_sync
from agentkit.models import Replay
from agentkit.presets import RESEARCH, ToolOptions

agent = RESEARCH.build_agent(Replay([]), options=ToolOptions(search_backend="fixture:x.json"))
print(agent.run_sync("q").anwser)
result = run_code_sync("t", repo=".", model="replay:x", test_cmd="true")
print(result.patch, result.test.passed if result.test else None, result.test_cmd)
run_code_sync("t", ".", model="replay:x")
''', encoding="utf-8")
    out = _mypy(tmp_path, user).stdout
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert any('"RunResult" has no attribute "anwser"' in e for e in errors), out
    assert any('"CodeResult" has no attribute "test_cmd"' in e for e in errors), out
    assert any('Too many positional arguments' in e and 'user.py:9:' in e for e in errors), out
    assert len(errors) == 3, out
