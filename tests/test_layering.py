"""The import graph follows the layers of the design (../shared/design.md), read from the source.

Each unit (a subpackage, or a top-level module) has a rank; a unit imports only units of lower
rank, so there are no cycles and nothing low reaches up (the protocol never imports the loop, the
loop never imports the application, nothing imports the CLI). Imports under ``TYPE_CHECKING``
do not run and do not count.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = {"agentkit": ROOT / "agentkit", "agentkit.tools": ROOT / "tools", "agentkit.sandboxes": ROOT / "sandboxes"}
PACKAGES = {"agent", "app", "cli", "deepseek", "demo", "models", "presets", "render", "sandboxes", "testing", "tools"}

RANK = {
    "agentkit": 0,  # the root: __version__ (its public names load lazily, from above)
    "agentkit.errors": 0, "agentkit.redact": 0, "agentkit.config": 1,
    "agentkit.messages": 1,
    "agentkit.deepseek": 2, "agentkit.events": 2, "agentkit.trajectory": 2,
    "agentkit.models": 3, "agentkit.sandboxes": 3,
    "agentkit.tools": 4,
    "agentkit.agent": 5,
    "agentkit.presets": 6, "agentkit.render": 6, "agentkit.testing": 6,
    "agentkit.app": 7, "agentkit.demo": 8,
    "agentkit.cli": 9, "agentkit.__main__": 10,
}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for name, base in SOURCES.items():
        for path in base.rglob("*.py"):
            rel = [p for p in path.relative_to(base).with_suffix("").parts if p != "__init__"]
            out[".".join([name, *rel])] = path
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in PACKAGES else module


def _runtime_imports(tree: ast.Module) -> list[str]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    names = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def edges() -> set[tuple[str, str]]:
    mods = _modules()
    found = set()
    for module, path in mods.items():
        for name in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if name in mods and _unit(name) != _unit(module):
                found.add((_unit(module), _unit(name)))
    return found


def test_every_unit_has_a_rank():
    assert sorted({_unit(m) for m in _modules()} - set(RANK)) == []


def test_imports_point_down_the_layers():
    upward = sorted(f"{a} -> {b}" for a, b in edges() if RANK[b] >= RANK[a])
    assert upward == []


def test_a_module_over_450_lines_says_why() -> None:
    """Issue 16: no module over ~450 lines without a reason given in its docstring."""
    import ast

    long = []
    for root in SOURCES.values():
        for path in sorted(root.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") > 450 and "Why one module over 450 lines" not in (ast.get_docstring(ast.parse(text)) or ""):
                long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert long == [], "split them, or say why in the module docstring: " + ", ".join(long)
