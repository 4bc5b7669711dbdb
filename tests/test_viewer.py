"""The viewer page's structure, parsed with the standard library (no browser needed): one card per
record, everything escaped, no external references, tokens highlighted, long outputs folded."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from agentkit.render.html import CSP, highlight, render_html


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def classes(self, cls: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if cls in (a.get("class") or "").split()]


def parse(page: str) -> Collector:
    c = Collector()
    c.feed(page)
    c.close()
    return c


def test_one_card_per_record_and_step_anchors(trajectory_file) -> None:
    page = render_html(trajectory_file(12, long_observation=5000))
    doc = parse(page)
    assert len(doc.classes("role-assistant")) == 13 and len(doc.classes("role-tool")) == 12
    ids = {a.get("id") for _, a in doc.tags}
    assert {f"step-{i}" for i in range(1, 13)} <= ids and "end" in ids
    assert len(doc.classes("error")) >= 1  # step 3's observation is an error
    assert len(doc.classes("fold")) == 1  # only the long observation is folded
    assert len(doc.classes("reasoning")) == 13


def test_self_contained_and_escaped(trajectory_file) -> None:
    page = render_html(trajectory_file(3, search=True))
    doc = parse(page)
    assert any(t == "meta" and a.get("http-equiv") == "Content-Security-Policy" and a.get("content") == CSP
               for t, a in doc.tags)
    assert not [a for t, a in doc.tags if t in ("script", "img", "link", "iframe") and (a.get("src") or a.get("href"))]
    external = [a["href"] for t, a in doc.tags if t == "a" and a.get("href") and not a["href"].startswith("#")]
    assert external == ["https://example.org/1", "https://example.org/2?a=1&b=<2>"]  # the sources table only
    assert "<b>now</b>" not in page and "&lt;b&gt;now&lt;/b&gt;" in page
    assert "javascript:alert(1)" in page and 'href="javascript' not in page
    assert "@import" not in page and "url(" not in page


def test_hostile_record_fields_stay_inert(tmp_path) -> None:
    import json

    evil = '"><script>alert(1)</script>'
    recs = [{"v": 1, "type": "run", "id": "r", "model": evil, "provider": evil, "tools": [], "task": evil},
            {"v": 1, "type": "message", "step": evil, "latency_s": evil, "usage": {"prompt": evil},
             "message": {"role": "assistant", "content": evil, "reasoning_content": evil, "tool_calls": [
                 {"id": evil, "type": "function", "function": {"name": evil, "arguments": evil}}]}},
            {"v": 1, "type": "event", "kind": evil, evil: evil},
            {"v": 1, "type": "end", "status": evil, "answer": evil, "sources": [{"n": 1, "url": evil, "title": evil}]}]
    path = tmp_path / "evil.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    page = render_html(path)
    assert page.count("<script>") == 1  # only the viewer's own script
    assert not [t for t, _ in parse(page).tags if t == "script"][1:]
    from agentkit.render.markdown import render_markdown

    assert render_markdown(path).startswith("# ")  # the transcript copes with the same damage


def test_special_tokens_are_highlighted() -> None:
    out = highlight('a<｜tool▁calls▁begin｜>b</think><｜DSML｜invoke name="x">c<b>')
    assert out == ('a<span class="tok">&lt;｜tool▁calls▁begin｜&gt;</span>b<span class="tok">&lt;/think&gt;</span>'
                   '<span class="tok">&lt;｜DSML｜invoke name=&quot;x&quot;&gt;</span>c&lt;b&gt;')


def test_totals_and_per_step_stats(trajectory_file) -> None:
    page = render_html(trajectory_file(2))
    assert "prompt <b>4,003</b>" in page  # 1001 + 1002 + 2000 from the three model calls
    assert re.search(r"1,001 → 50 tok \(10 reasoning\) · 500 cached \(50% hit\) · 0\.51 s · \$0\.0001", page)
    assert re.search(r"cached <b>[\d,]+ \(\d+% hit\)</b>", page)  # the run's cache hit share
    assert re.search(r"DeepSeek prompt at the last step · [\d,]+ characters · [\d,]+ tokens", page)


def test_incomplete_run_still_renders(trajectory_file) -> None:
    page = render_html(trajectory_file(3, finished=False))
    assert 'status <b class="status">incomplete</b>' in page
    assert len(parse(page).classes("role-tool")) == 3


def test_page_size_is_linear(trajectory_file) -> None:
    small, big = (len(render_html(trajectory_file(n))) for n in (50, 200))
    assert big < small * 5  # no quadratic blow-up; the prompt section grows with the run


def test_hand_written_jsonl_and_bad_files(tmp_path) -> None:
    """Renderers accept any design-§2 file (here written by hand, tool output as a plain message record)
    and refuse a file that is not a trajectory with a one-line error."""
    import json

    import pytest

    from agentkit.errors import ConfigError
    from agentkit.render.markdown import render_markdown
    from agentkit.render.openai import export_openai
    from agentkit.render.trajectories import render_deepseek

    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{\"command\": \"ls\"}"}}
    recs = [{"v": 1, "type": "run", "id": "r", "model": "m", "provider": "p", "tools": [], "task": "t"},
            {"v": 1, "type": "message", "step": 0, "message": {"role": "user", "content": "t"}},
            {"v": 1, "type": "message", "step": 1, "message": {"role": "assistant", "content": None,
                                                                "tool_calls": [call]}},
            {"v": 1, "type": "message", "step": 1, "message": {"role": "tool", "tool_call_id": "c1",
                                                                "name": "bash", "content": "a.txt"}},
            {"v": 1, "type": "message", "step": 2, "message": {"role": "assistant", "content": "ok"}}]
    path = tmp_path / "hand.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"type": "end", "sta')  # cut last line
    page = render_html(path)
    assert len(parse(page).classes("role-tool")) == 1 and "a.txt" in page
    assert "### Result of `bash`" in render_markdown(path)
    assert render_deepseek(path).endswith("<｜tool▁output▁begin｜>a.txt<｜tool▁output▁end｜>ok<｜end▁of▁sentence｜>")
    assert [m["role"] for m in export_openai(path)["messages"]] == ["user", "assistant", "tool", "assistant"]
    only_run = tmp_path / "only.jsonl"
    only_run.write_text(json.dumps(recs[0]) + "\n")
    assert 'status <b class="status">incomplete</b>' in render_html(only_run)
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"hello": 1}\n')
    with pytest.raises(ConfigError, match="not an agentkit trajectory"):
        render_html(junk)
    with pytest.raises(ConfigError, match="no trajectory"):
        render_html(tmp_path / "missing.jsonl")


async def test_traceback_of_a_raising_tool_is_shown_folded_and_escaped(agent_tools, tmp_path) -> None:
    """A tool that raised: the page shows its traceback (escaped, in a closed <details>), which the
    model never saw; the observation text stays the short error."""
    from agentkit.agent import Agent, Limits
    from agentkit.models.replay import Replay
    from tests.fixtures_agent import turn

    path = tmp_path / "boom.jsonl"
    script = [turn(None, ("boom", {"reason": "<b>disk</b> & fire"})), turn("done")]
    await Agent(Replay(script), agent_tools, limits=Limits(max_steps=3), trajectory=path).run("go")
    page = render_html(path)
    doc = parse(page)
    (box,) = doc.classes("traceback")[:1]
    assert "open" not in box and len(doc.classes("traceback")) == 2  # the <details> and its <pre>
    block = page[page.index('<details class="traceback">'):]
    block = block[:block.index("</details>")]
    assert "Traceback (most recent call last):" in block and "raise RuntimeError(reason)" in block
    assert "RuntimeError: &lt;b&gt;disk&lt;/b&gt; &amp; fire" in block
    assert "<b>disk</b>" not in page


def _run_folder(tmp_path, name: str = "run"):
    import json

    evil = '"><script>alert(1)</script>'
    edit = {"command": "str_replace", "path": "pkg/a.py", "old_str": "x = 1\n", "new_str": f"x = 2  # {evil}\n"}
    create = {"command": "create", "path": "new.py", "file_text": "print('hi')\n"}
    calls = [{"id": "c1", "type": "function", "function": {"name": "str_replace_editor", "arguments": json.dumps(edit)}},
             {"id": "c2", "type": "function", "function": {"name": "str_replace_editor", "arguments": json.dumps(create)}},
             {"id": "c3", "type": "function", "function": {"name": "str_replace_editor",
                                                           "arguments": json.dumps({"command": "view", "path": "."})}}]
    recs = [{"v": 1, "type": "run", "id": "r", "model": "m", "provider": "p", "tools": [], "task": "t"},
            {"v": 1, "type": "message", "step": 1, "message": {"role": "assistant", "content": "", "tool_calls": calls}},
            {"v": 1, "type": "end", "status": "done", "answer": "ok"}]
    run = tmp_path / name
    run.mkdir(parents=True)
    (run / "trajectory.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "patch.diff").write_text(f"diff --git a/pkg/a.py b/pkg/a.py\n--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1 +1 @@\n"
                                    f"-x = 1\n+x = 2  # {evil}\n")
    (run / "result.json").write_text(json.dumps({"status": "done", "files": {"patch": "patch.diff"}, "test": {
        "cmd": "pytest -q", "exit_code": 1, "passed": False, "timed_out": False, "output": f"1 failed {evil}"}}))
    return run


def test_the_outcome_and_edits_as_diffs(tmp_path) -> None:
    """The final patch and the test result (result.json beside the trajectory) above the steps; an
    editor call as a coloured diff, its JSON folded; all of it escaped."""
    run = _run_folder(tmp_path)
    page = render_html(run / "trajectory.jsonl")
    doc = parse(page)
    assert page.count("<script>") == 1  # only the viewer's own
    assert len(doc.classes("outcome")) == 1 and len(doc.classes("fail")) == 1
    assert "Tests FAILED</b> (exit 1): <code>pytest -q</code>" in page
    assert "Final patch · 1 file(s): pkg/a.py" in page
    diffs = doc.classes("diff")
    assert len(diffs) == 3  # the patch, the str_replace and the create; the view stays JSON
    assert '<span class="d-del">-x = 1</span><span class="d-add">+x = 2  # &quot;&gt;&lt;script&gt;' in page
    assert '<span class="d-meta">--- /dev/null</span>' in page and "+print(&#x27;hi&#x27;)" in page
    assert len(doc.classes("args")) == 2 and len(doc.classes("json")) == 3
    assert "batch index" not in page
    given = render_html(run / "trajectory.jsonl", result={"test": {"cmd": "make test", "exit_code": 0, "passed": True}})
    assert "Tests passed</b> (exit 0)" in given  # the caller's result wins over a stale file


def test_a_batch_task_links_to_the_batch_index(tmp_path) -> None:
    """A batch writes OUT/tasks/ID/ and OUT/index.html (the link went to OUT/tasks/index.html, and was
    shown only when that file existed, so never); the ledger is there from the start, the index
    only once the batch ends, so the ledger says the run is a batch task."""
    run = _run_folder(tmp_path / "batch" / "tasks", "task-1")
    assert "batch index" not in render_html(run / "trajectory.jsonl")
    (tmp_path / "batch" / "results.jsonl").write_text("")
    assert '<a href="../../index.html">' in render_html(run / "trajectory.jsonl")
