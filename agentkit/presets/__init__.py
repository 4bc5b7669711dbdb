"""The two agents agentkit ships: ``code`` (fix code in a repo) and ``research`` (answer with citations)."""

from __future__ import annotations

from agentkit.presets.base import Preset, ToolOptions
from agentkit.presets.code import CODE
from agentkit.presets.research import RESEARCH, research_preset

PRESETS = {"code": CODE, "research": RESEARCH}


def get_preset(name: str, *, python: bool = False) -> Preset:
    """The preset called ``name``; ``python`` adds the python tool to the research agent."""
    from agentkit.errors import ConfigError

    if name == "research":
        return research_preset(python=python)
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; use one of: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


__all__ = ["CODE", "PRESETS", "Preset", "RESEARCH", "ToolOptions", "get_preset", "research_preset"]
