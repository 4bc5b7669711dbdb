"""agentkit: code agents and search agents for the DeepSeek V3.1 family."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers, editors and the docs see; at run time the same names load lazily
    from agentkit.agent import Agent, Limits, RunResult
    from agentkit.app.code import CodeResult, run_code, run_code_sync
    from agentkit.models import Fallback, OpenAICompatible, RawDeepSeek, Replay, make_model
    from agentkit.models.base import Completion, ModelSettings
    from agentkit.sandboxes import DockerSandbox, LocalSandbox
    from agentkit.tools.base import Observation, ToolContext, tool
    from agentkit.trajectory import Trajectory

# Public names, imported on first use so `import agentkit` (and the CLI's start) stays cheap.
_EXPORTS = {
    "Agent": "agentkit.agent", "Limits": "agentkit.agent", "RunResult": "agentkit.agent",
    "tool": "agentkit.tools.base", "Observation": "agentkit.tools.base", "ToolContext": "agentkit.tools.base",
    "ModelSettings": "agentkit.models.base", "Completion": "agentkit.models.base",
    "OpenAICompatible": "agentkit.models", "Fallback": "agentkit.models", "Replay": "agentkit.models",
    "RawDeepSeek": "agentkit.models", "make_model": "agentkit.models",
    "LocalSandbox": "agentkit.sandboxes", "DockerSandbox": "agentkit.sandboxes",
    "Trajectory": "agentkit.trajectory",
    "CodeResult": "agentkit.app.code", "run_code": "agentkit.app.code", "run_code_sync": "agentkit.app.code",
}

__all__ = ["Agent", "CodeResult", "Completion", "DockerSandbox", "Fallback", "Limits", "LocalSandbox",
           "ModelSettings", "Observation", "OpenAICompatible", "RawDeepSeek", "Replay", "RunResult", "ToolContext",
           "Trajectory", "make_model", "run_code", "run_code_sync", "tool"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value
