"""Import smoke test of every runtime dependency (an install that half-worked shows up here,
e.g. trafilatura without lxml_html_clean) and of every agentkit module present."""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Distribution name -> module to import, where they differ.
MODULE_OF = {"httpx": "httpx", "pydantic": "pydantic", "docker": "docker", "ddgs": "ddgs",
             "trafilatura": "trafilatura", "lxml_html_clean": "lxml_html_clean", "tiktoken": "tiktoken",
             "rich": "rich", "pypdf": "pypdf", "mcp": "mcp"}


def runtime_dependencies() -> list[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0] for d in deps]


@pytest.mark.parametrize("dist", runtime_dependencies())
def test_runtime_dependency_imports(dist):
    module = importlib.import_module(MODULE_OF.get(dist, dist.replace("-", "_")))
    assert module is not None


def test_http2_extra_is_installed():
    import h2  # noqa: F401  (httpx[http2])
    import httpx

    httpx.AsyncClient(http2=True)


def test_trafilatura_extracts_with_its_html_cleaner():
    import trafilatura

    html = "<html><body><article><h1>Title</h1><p>" + "Readable paragraph text. " * 20 + "</p></article></body></html>"
    assert "Readable paragraph text." in (trafilatura.extract(html) or "")


def test_every_agentkit_module_imports():
    import agentkit
    import agentkit.sandboxes
    import agentkit.tools

    failures = []
    infos = [*pkgutil.walk_packages(agentkit.__path__, "agentkit."),
             *pkgutil.walk_packages(agentkit.tools.__path__, "agentkit.tools."),
             *pkgutil.walk_packages(agentkit.sandboxes.__path__, "agentkit.sandboxes.")]
    assert any(i.name == "agentkit.tools.base" for i in infos)
    for info in infos:
        if info.name.endswith("__main__"):
            continue  # runs the CLI
        try:
            importlib.import_module(info.name)
        except ImportError as e:
            failures.append(f"{info.name}: {e}")
    assert failures == []


def test_console_entry_and_python_m():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "agentkit", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "agentkit" in out.stdout
