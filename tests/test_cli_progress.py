"""The progress display: plain lines when stdout is not a terminal, a live line on a terminal,
nothing with --quiet; fed by the agent's real events."""

from __future__ import annotations

import io
import json
from pathlib import Path

from agentkit import demo
from agentkit.events import LimitReached, ModelCallFinished, RunEnded, ToolCallStarted, Warning
from agentkit.messages import Usage
from agentkit.app.progress import Progress, short_argument
from tests.fixtures_cli import run_cli, run_on_terminal


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(p: Progress) -> None:
    p.update(ModelCallFinished(step=1, usage=Usage(prompt=1200, completion=80, cost_usd=0.0021)))
    p.update(ToolCallStarted(step=1, call_id="c1", name="bash", arguments=json.dumps({"command": "pytest -x  tests/"})))
    p.update(ModelCallFinished(step=2, usage=Usage(prompt=1500, completion=40, cost_usd=0.0019)))
    p.update(ToolCallStarted(step=2, call_id="c2", name="str_replace_editor",
                             arguments=json.dumps({"command": "view", "path": "src/app.py"})))
    p.update(Warning(step=2, text="same action repeated"))
    p.update(LimitReached(step=2, limit="steps", value=2, maximum=2))
    p.update(RunEnded(step=2, status="limit", usage=Usage(prompt=2700, completion=120, cost_usd=0.004), cost_usd=0.004))


def test_plain_mode_prints_one_line_per_event() -> None:
    buf = io.StringIO()
    p = Progress("auto", stream=buf)  # a StringIO is not a terminal -> plain
    assert p.mode == "plain"
    _feed(p)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("[step 1 | 1280 tok | $0.0021 |") and lines[0].endswith("bash: pytest -x tests/")
    assert lines[1].endswith("str_replace_editor: view src/app.py")
    assert lines[2].endswith("warning: same action repeated")
    assert lines[3].endswith("limit: steps reached (2.0 of 2.0)")
    assert lines[4].startswith("[step 2 | 2820 tok | $0.0040 |") and lines[4].endswith("end: limit")
    assert p.status == "limit" and p.tokens == 2820


def test_quiet_mode_prints_nothing() -> None:
    buf = io.StringIO()
    p = Progress("quiet", stream=buf)
    p.start()
    _feed(p)
    p.note("running tests")
    p.close()
    assert buf.getvalue() == "" and p.step == 2  # state is still kept


def test_live_mode_redraws_a_status_line_on_a_terminal() -> None:
    buf = _Tty()
    with Progress("auto", stream=buf, label="demo") as p:
        assert p.mode == "live"
        _feed(p)
    out = buf.getvalue()
    assert "\x1b[" in out  # cursor control: redrawn in place
    assert "step 2" in out and "2,820 tok" in out and "$0.0040" in out and "str_replace_editor" in out


def test_unknown_cost_shows_a_question_mark() -> None:
    buf = io.StringIO()
    p = Progress("plain", stream=buf)
    p.update(ModelCallFinished(step=1, usage=Usage(prompt=10, completion=5, cost_usd=None)))
    p.update(ToolCallStarted(step=1, call_id="c", name="search", arguments='{"questions": "a||b"}'))
    assert "| $? |" in buf.getvalue() and buf.getvalue().rstrip().endswith("search: a||b")


def test_short_argument_picks_the_telling_field() -> None:
    assert short_argument("fetch", '{"url": "https://example.org/x", "page": 2}') == "https://example.org/x"
    assert short_argument("python", {"code": "print(1)\nprint(2)"}) == "print(1) print(2)"
    assert short_argument("bash", "not json") == "not json"
    assert short_argument("bash", {"command": "x" * 200}, width=20) == "x" * 19 + "…"
    assert short_argument("custom", {"n": 3}) == '{"n": 3}'


def test_cli_on_a_real_terminal_uses_the_live_display(tmp_path: Path) -> None:
    rc, out = run_on_terminal("demo", "--out", str(tmp_path / "run"))
    assert rc == 0
    assert "\x1b[" in out and "step 6" in out and "submit" in out
    assert "[step 1 |" not in out  # no plain lines on a terminal
    assert "patch:" in out and str(tmp_path / "run" / "patch.diff") in out.replace("\r\n", "\n").replace("\n", "")


def test_quiet_and_json_keep_stdout_clean(tmp_path: Path) -> None:
    proc = run_cli("demo", "--out", str(tmp_path / "a"), "--quiet")
    assert proc.returncode == 0 and proc.stdout == f"done: {tmp_path / 'a'}\n" and proc.stderr == ""
    proc = run_cli("demo", "--out", str(tmp_path / "b"), "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["test"]["passed"] is True  # progress went to stderr
    assert "bash: python3 -m unittest" in proc.stderr
    assert demo.TEST_CMD in proc.stderr
