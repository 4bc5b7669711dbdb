"""Every public item has a docstring (issue 15, part 7): the names the public modules export,
and the public methods and properties of their classes; the API reference is built from them."""

from __future__ import annotations

import importlib
import inspect

MODULES = ["agentkit", "agentkit.agent", "agentkit.events", "agentkit.errors", "agentkit.testing", "agentkit.models",
           "agentkit.sandboxes", "agentkit.trajectory", "agentkit.tools.base", "agentkit.messages"]


def _undocumented() -> list[str]:
    missing = []
    for name in MODULES:
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]):
            obj = getattr(module, export)
            if not str(getattr(obj, "__module__", "")).startswith("agentkit"):
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not (obj.__doc__ or "").strip():
                missing.append(f"{name}.{export}")
            if not inspect.isclass(obj):
                continue
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                if inspect.isfunction(fn) and not (fn.__doc__ or "").strip():
                    missing.append(f"{name}.{export}.{attr}")
    return sorted(set(missing))


def test_every_public_item_has_a_docstring() -> None:
    assert _undocumented() == []


def test_the_run_methods_say_what_they_return_and_raise() -> None:
    from agentkit import Agent, RunResult

    for method in (Agent.run, Agent.run_sync):
        assert "RunResult" in (method.__doc__ or "") and "raise" in (method.__doc__ or "").lower()
    assert "never raises" in (Agent.__doc__ or "") or "not raise" in (Agent.iter.__doc__ or "")
    assert "messages" in (RunResult.__doc__ or "")
