"""DeepSeek prompt formats (render and parse), leaked-markup repair, and trajectory renderers.

``deepseek.render_prompt`` / ``parser.parse_completion`` / ``repair.repair_message`` are the
model-facing parts; ``render_deepseek``, ``export_openai``, ``render_markdown`` and ``render_html``
turn a trajectory file into text for people and trainers (imported lazily: they need the
trajectory loader).
"""

from __future__ import annotations

from typing import Any

_LAZY = {"render_deepseek": "agentkit.formats.trajectories", "export_openai": "agentkit.formats.openai",
         "render_markdown": "agentkit.formats.markdown", "render_html": "agentkit.formats.html",
         "render_prompt": "agentkit.formats.deepseek", "render_tools_block": "agentkit.formats.deepseek",
         "SearchAgentFormat": "agentkit.formats.deepseek", "parse_completion": "agentkit.formats.parser",
         "StreamParser": "agentkit.formats.parser", "repair_message": "agentkit.formats.repair"}

__all__ = ["SearchAgentFormat", "StreamParser", "export_openai", "parse_completion", "render_deepseek",
           "render_html", "render_markdown", "render_prompt", "render_tools_block", "repair_message"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentkit.formats' has no attribute {name!r}")
