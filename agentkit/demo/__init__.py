"""The offline demos: a replay model drives the real tools to fix a real bug, or to answer a
question from pages served on 127.0.0.1. No key and no network needed.

``code``: the bundled ``repo/`` (a tiny stats library whose ``median`` is wrong for even-length
lists) is copied into the run folder, the replay script ``code_replay.jsonl`` explores, reproduces,
edits and re-runs the tests through the real ``bash`` and ``str_replace_editor`` tools in a local
sandbox, and the run's test command checks the result.

``research``: ``research/pages/*.html`` are served by ``LocalWebServer``; the search fixture and the
replay script name them with a ``{BASE}`` placeholder that is filled with the server's address.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator
from contextlib import contextmanager

DEMO_DIR = Path(__file__).resolve().parent
REPO = DEMO_DIR / "repo"
CODE_SCRIPT = DEMO_DIR / "code_replay.jsonl"
RESEARCH_DIR = DEMO_DIR / "research"
TEST_CMD = "python3 -m unittest discover -s tests"
CODE_TASK = (REPO / "ISSUE.md").read_text(encoding="utf-8") if (REPO / "ISSUE.md").exists() else ""
QUESTION = "Who designed the Vellmar tide clock, when was it built, and how accurate is it today?"
# URL path on the local server -> page file
PAGES = {"/vellmar/tide-clock.html": "tide-clock.html",
         "/courier/2019/tide-clock-restored.html": "restoration.html",
         "/notes/tide-clocks.html": "tide-machines.html"}


def code_options(out: str | Path, **overrides: Any) -> Any:
    """``RunOptions`` of the code demo (replay model, local sandbox, the repo's tests as test command)."""
    from agentkit.app.runner import RunOptions

    fields: dict[str, Any] = dict(preset="code", task=CODE_TASK, repo=str(REPO), model=f"replay:{CODE_SCRIPT}",
                                  test_cmd=TEST_CMD, out=str(out), max_steps=20)
    fields.update(overrides)
    return RunOptions(**fields)


def _fill(text: str, base: str) -> str:
    return text.replace("{BASE}", base)


@contextmanager
def research_site(workdir: str | Path) -> Iterator[dict[str, str]]:
    """Serve the demo pages on 127.0.0.1 and write the search fixture and replay script for that address.

    Yields ``{"base_url", "search_fixture", "script"}``; the server stops when the block ends.
    """
    from agentkit.testing.web import LocalWebServer

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    with LocalWebServer() as server:
        for route, name in PAGES.items():
            server.add_html(route, (RESEARCH_DIR / "pages" / name).read_text(encoding="utf-8"))
        base = server.base_url
        fixture = work / "demo-search.json"
        # JSON-escape the base URL placeholder filling by loading and re-dumping
        data = json.loads(_fill((RESEARCH_DIR / "search.json").read_text(encoding="utf-8"), base))
        fixture.write_text(json.dumps(data, indent=2), encoding="utf-8")
        script = work / "demo-replay.jsonl"
        script.write_text(_fill((RESEARCH_DIR / "replay.jsonl").read_text(encoding="utf-8"), base), encoding="utf-8")
        yield {"base_url": base, "search_fixture": str(fixture), "script": str(script)}


def research_options(out: str | Path, site: dict[str, str], **overrides: Any) -> Any:
    """``RunOptions`` of the research demo for a running ``research_site``."""
    from agentkit.app.runner import RunOptions

    fields: dict[str, Any] = dict(preset="research", task=QUESTION, model=f"replay:{site['script']}",
                                  search_backend=f"fixture:{site['search_fixture']}", fetch_allow=["127.0.0.1"],
                                  out=str(out), max_steps=10)
    fields.update(overrides)
    return RunOptions(**fields)
