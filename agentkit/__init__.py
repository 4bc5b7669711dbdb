"""agentkit: code agents and search agents for the DeepSeek V3.1 family."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names, imported lazily so `import agentkit` stays cheap and optional parts stay optional.
_EXPORTS = {
    "Agent": "agentkit.agent", "Limits": "agentkit.agent", "RunResult": "agentkit.agent",
    "tool": "agentkit.tools.base", "Observation": "agentkit.tools.base", "ToolContext": "agentkit.tools.base",
    "ModelSettings": "agentkit.models.base", "Completion": "agentkit.models.base",
    "OpenAICompatible": "agentkit.models", "Fallback": "agentkit.models", "Replay": "agentkit.models",
    "RawDeepSeek": "agentkit.models", "make_model": "agentkit.models",
    "LocalSandbox": "agentkit.sandboxes", "DockerSandbox": "agentkit.sandboxes",
    "Trajectory": "agentkit.trajectory",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentkit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
