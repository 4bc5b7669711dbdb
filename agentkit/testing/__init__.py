"""Test helpers that ship with agentkit, so users can test their own agents offline:
``FakeServer`` (a scriptable fake OpenAI-compatible server with fault injection: ``Reply``,
``Fault``, ``Chaos``; ``ScriptError`` for a broken script) and ``LocalWebServer`` (pages and
search results for the research agent's tools). See the "Testing" page of the docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time the names load on first use
    from agentkit.testing.server import Chaos, FakeServer, Fault, Reply, ScriptError
    from agentkit.testing.web import LocalWebServer

_EXPORTS = {"FakeServer": "server", "Reply": "server", "Fault": "server", "Chaos": "server",
            "ScriptError": "server", "LocalWebServer": "web"}

__all__ = ["Chaos", "FakeServer", "Fault", "LocalWebServer", "Reply", "ScriptError"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f"agentkit.testing.{module}"), name)
    raise AttributeError(f"module 'agentkit.testing' has no attribute {name!r}")
