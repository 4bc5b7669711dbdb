"""Model backends. See ``base.py`` for the contract."""

from agentkit.models.base import Completion, CompletionDelta, Model, ModelEvent, ModelSettings, ToolCallDelta

__all__ = ["Completion", "CompletionDelta", "Model", "ModelEvent", "ModelSettings", "ToolCallDelta"]
