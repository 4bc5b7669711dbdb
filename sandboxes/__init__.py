"""Sandbox drivers (installed as ``agentkit.sandboxes``)."""

from agentkit.sandboxes.base import DirEntry, ExecResult, Sandbox

__all__ = ["DirEntry", "ExecResult", "Sandbox"]
