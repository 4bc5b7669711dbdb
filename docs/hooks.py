"""mkdocs hook: the CLI reference page is generated from the argparse parser, so it cannot drift."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mkdocs.plugins import event_priority

MARKER = "<!-- cli-reference -->"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix it for a stable page
    from agentkit.cli import build_parser

    root = build_parser()
    parts = ["```text", root.format_help().rstrip(), "```"]
    for name, sub in sorted(_subparsers(root).items()):
        parts += [f"\n## agentkit {name}\n", "```text", sub.format_help().rstrip(), "```"]
        for child, parser in sorted(_subparsers(sub).items()):
            parts += [f"\n### agentkit {name} {child}\n", "```text", parser.format_help().rstrip(), "```"]
    return "\n".join(parts) + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return markdown.replace(MARKER, cli_reference()) if MARKER in markdown else markdown


@event_priority(100)  # before mkdocstrings reads its handlers' options
def on_config(config: Any, **_: Any) -> Any:
    """Show the API reference the installed layout: ``agentkit.tools`` and ``agentkit.sandboxes``
    live in the top-level ``tools/`` and ``sandboxes/`` folders (the package-dir mapping in
    pyproject.toml), which static analysis cannot follow; a tree of links puts them in place."""
    import pathlib
    import tempfile

    root = pathlib.Path(__file__).resolve().parent.parent
    mirror = pathlib.Path(tempfile.mkdtemp(prefix="agentkit-docs-src-")) / "agentkit"
    mirror.mkdir()
    for entry in (root / "agentkit").iterdir():
        (mirror / entry.name).symlink_to(entry)
    for name in ("tools", "sandboxes"):
        (mirror / name).symlink_to(root / name)
    handler = config["plugins"]["mkdocstrings"].config["handlers"].setdefault("python", {})
    handler["paths"] = [str(mirror.parent)]
    return config
