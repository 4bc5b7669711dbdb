"""The pieces behind the CLI: presets, their tool sets, the working copy and patch, the answer file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from agentkit.errors import ConfigError
from agentkit.models.replay import Replay
from agentkit.presets import CODE, ToolOptions, get_preset, research_preset
from agentkit.app.runner import answer_markdown, default_out, exit_code, read_task, slug
from agentkit.presets.toolset import ConfirmShell, LimitedSearch, build_tools
from agentkit.app.workspace import Baseline, copy_repo, sync_tree
from agentkit.tools.base import ToolContext


def test_presets() -> None:
    assert CODE.tools == ["bash", "str_replace_editor", "submit"] and not CODE.thinking and CODE.require_submit
    research = research_preset(python=True, date=dt.date(2026, 1, 2))
    assert research.tools == ["search", "fetch", "python"] and research.thinking and not research.require_submit
    assert research.system.startswith("The current date is 2026-01-02.")
    assert "[citation:N]" in research.system and "`python`" in research.system
    assert "`python`" not in get_preset("research").system
    with pytest.raises(ConfigError, match="unknown preset 'chef'"):
        get_preset("chef")


def test_build_agent_uses_the_preset(tmp_path: Path) -> None:
    from agentkit.sandboxes import LocalSandbox

    with pytest.raises(ConfigError, match=r"the code preset runs commands in a sandbox: pass sandbox=LocalSandbox"):
        CODE.build_agent(Replay([]))
    sandbox = LocalSandbox(workspace=tmp_path)
    agent = CODE.build_agent(Replay([{"content": "hi"}]), sandbox=sandbox, trajectory=tmp_path / "t.jsonl",
                             run_info={"x": 1})
    assert list(agent.tools) == ["bash", "str_replace_editor", "submit"]
    assert agent.settings.thinking is False and agent.require_submit is True and agent.system == CODE.system
    assert agent.run_info == {"preset": "code", "x": 1}


def test_tool_options_reach_the_tools(tmp_path: Path) -> None:
    fixture = tmp_path / "f.json"
    fixture.write_text(json.dumps({"*": [{"title": "T", "url": "https://example.org/", "snippet": "s"}]}))
    search, fetch = build_tools(["search", "fetch"], ToolOptions(search_backend=f"fixture:{fixture}", max_searches=1,
                                                                 fetch_allow=["10.0.0.0/8"]))
    assert isinstance(search, LimitedSearch) and search.inner.backend.name == "fixture"
    assert fetch.allow_entries == ["10.0.0.0/8"]
    (bash,) = build_tools(["bash"], ToolOptions(confirm=True))
    assert isinstance(bash, ConfirmShell) and bash.name == "bash" and bash.parallel_safe is False
    with pytest.raises(ConfigError, match="unknown tool"):
        build_tools(["teleport"], ToolOptions())


async def test_search_budget(tmp_path: Path) -> None:
    fixture = tmp_path / "f.json"
    fixture.write_text(json.dumps({"*": [{"title": "T", "url": "https://example.org/", "snippet": "s"}]}))
    (search,) = build_tools(["search"], ToolOptions(search_backend=f"fixture:{fixture}", max_searches=2))
    ctx = ToolContext()
    first = await search({"questions": "a"}, ctx)
    assert "[webpage 1 begin]" in first.text
    assert not (await search({"questions": "b"}, ctx)).is_error
    third = await search({"questions": "c"}, ctx)
    assert third.is_error and "budget" in third.text


async def test_confirm_shell_answers(local_sandbox) -> None:
    answers = iter(["n", "y", "because it deletes things", "a"])
    (inner,) = build_tools(["bash"], ToolOptions())
    tool = ConfirmShell(inner, ask=lambda command: next(answers))
    ctx = ToolContext(sandbox=local_sandbox)
    refused = await tool({"command": "echo one"}, ctx)
    assert refused.is_error and "declined" in refused.text
    assert "one" in (await tool({"command": "echo one"}, ctx)).text
    reason = await tool({"command": "rm -rf x"}, ctx)
    assert reason.is_error and "because it deletes things" in reason.text
    assert "two" in (await tool({"command": "echo two"}, ctx)).text  # "a": always
    assert "three" in (await tool({"command": "echo three"}, ctx)).text  # no more questions


def test_baseline_patch_covers_edits_new_and_deleted_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "a.py").write_text("a = 1\n")
    (repo / "old.txt").write_text("old\n")
    work = copy_repo(repo, tmp_path / "work")
    base = Baseline.take(work, tmp_path / "base.git")
    assert base.diff() == ""
    (work / "pkg" / "a.py").write_text("a = 2\n")
    (work / "old.txt").unlink()
    (work / "new.txt").write_text("new\n")
    (work / "pkg" / "__pycache__").mkdir()
    (work / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    patch = base.diff()
    assert "-a = 1\n+a = 2" in patch and "deleted file mode" in patch and "+new" in patch and "pyc" not in patch
    # taking it again (resume) keeps the original baseline
    assert Baseline.take(work, tmp_path / "base.git").diff() == patch


def test_sync_tree_mirrors_a_copy_back(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("1")
    (work / "gone.txt").write_text("1")
    base = Baseline.take(work, tmp_path / "b.git")
    (work / "untracked-build-output").write_text("x")  # appeared on the host, unknown to the baseline
    back = tmp_path / "back"
    (back / "sub").mkdir(parents=True)
    (back / "keep.txt").write_text("2")
    (back / "sub" / "new.txt").write_text("3")
    sync_tree(back, work, base)
    assert (work / "keep.txt").read_text() == "2" and (work / "sub" / "new.txt").read_text() == "3"
    assert not (work / "gone.txt").exists() and (work / "untracked-build-output").exists()


def test_answer_markdown_lists_cited_sources() -> None:
    sources = [{"n": 1, "url": "https://a.org", "title": "A"}, {"n": 2, "url": "https://b.org", "title": ""},
               {"n": 3, "url": "https://c.org", "title": "C"}]
    text = answer_markdown("X [citation:3] and Y [citation:2].", sources)
    assert text.endswith("## Sources\n\n2. [https://b.org](https://b.org)\n3. [C](https://c.org)\n")
    assert "1. [A]" in answer_markdown("No citations.", sources)  # nothing cited: list all
    assert answer_markdown("Plain.", []) == "Plain.\n"
    from agentkit.tools.base import Source  # RunResult.sources, typed

    assert answer_markdown("X [citation:3] and Y [citation:2].", [Source(**s) for s in sources]) == text  # type: ignore[arg-type]


def test_small_helpers(tmp_path: Path) -> None:
    assert slug("Fix the BUG in parser.py!") == "fix-the-bug-in-parser-py"
    assert slug("!!!") == "run"
    first = default_out("task", root=tmp_path)
    first.mkdir()
    assert default_out("task", root=tmp_path) != first
    task = tmp_path / "t.md"
    task.write_text("from a file")
    assert read_task(f"@{task}") == "from a file" and read_task("plain") == "plain"
    assert exit_code({"status": "done", "test": None}) == 0
    assert exit_code({"status": "done", "test": {"passed": False}}) == 1
    assert exit_code({"status": "limit", "test": None}) == 1


def test_search_backend_spellings(tmp_path: Path) -> None:
    from agentkit.presets.toolset import search_backend

    assert search_backend("searxng:http://127.0.0.1:8888").name == "searxng"
    assert search_backend("duckduckgo").name == search_backend("ddgs").name
    with pytest.raises(ConfigError, match="unknown search backend"):
        search_backend("altavista")
