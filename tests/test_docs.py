"""The documentation site builds without a warning, and every Python example in it runs.

``mkdocs build --strict`` fails on a broken link, a missing page or an API item that no longer
exists; the examples are executed as written (they use ``Replay``, so they need no key)."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "pages"
BLOCKS = [(page.name, i, code) for page in sorted(PAGES.glob("*.md"))
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S))]


def test_the_pages_have_examples():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("page,index,code", BLOCKS, ids=[f"{p}#{i}" for p, i, _ in BLOCKS])
def test_python_examples_in_the_docs_run(page, index, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", str(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{page} example {index} failed:\n{proc.stderr[-3000:]}"


def test_the_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable)) or shutil.which("mkdocs")
    assert mkdocs, "mkdocs comes with the test extra"
    proc = subprocess.run([mkdocs, "build", "--strict", "-f", str(ROOT / "docs" / "mkdocs.yml"),
                           "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "agentkit code" in cli and "--request-timeout" in cli  # generated from the parser
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "run_sync" in api and "LocalSandbox" in api
