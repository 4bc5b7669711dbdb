"""Test helpers that ship with agentkit, so users can test their own agents offline:
``agentkit.testing.server`` (a scriptable fake OpenAI-compatible server with fault injection)."""

from __future__ import annotations

from typing import Any

_EXPORTS = {"FakeServer", "Reply", "Fault", "Chaos"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from agentkit.testing import server

        return getattr(server, name)
    raise AttributeError(f"module 'agentkit.testing' has no attribute {name!r}")
