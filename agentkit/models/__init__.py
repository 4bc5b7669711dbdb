"""Model backends. See ``base.py`` for the contract and ``make_model`` for the one entry point
the CLI and presets use (``"replay:PATH"``, provider ``"raw"``, or any chat-completions preset)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentkit.errors import ConfigError
from agentkit.models.base import (Completion, CompletionDelta, Model, ModelBase, ModelEvent, ModelSettings, OnEvent,
                                  ToolCallDelta)
from agentkit.models.fallback import Fallback
from agentkit.models.openai_compat import OpenAICompatible
from agentkit.models.providers import PROVIDERS, infer_provider

__all__ = ["Completion", "CompletionDelta", "Fallback", "Model", "ModelBase", "ModelEvent", "ModelSettings", "OnEvent",
           "OpenAICompatible", "RawDeepSeek", "Replay", "ToolCallDelta", "make_model"]

if TYPE_CHECKING:  # seen by type checkers and the docs; loaded on first use (they pull in the tokenizer)
    from agentkit.models.raw_deepseek import RawDeepSeek
    from agentkit.models.replay import Replay

_LAZY = {"Replay": "agentkit.models.replay", "RawDeepSeek": "agentkit.models.raw_deepseek"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentkit.models' has no attribute {name!r}")


def make_model(model: str | None, provider: str | None = None, base_url: str | None = None, api_key: str | None = None,
               settings: ModelSettings | None = None, fallbacks: list[str] | None = None,
               template: str | None = None, **client_kw: Any) -> Model:
    """Build a model from CLI-style strings.

    ``model="replay:PATH"`` plays a script; ``provider="raw"`` uses ``/v1/completions`` with our
    own DeepSeek renderer; otherwise an ``OpenAICompatible`` client for ``provider`` (guessed
    from the base URL or the model id when omitted). Each ``fallbacks`` entry is a model id,
    optionally prefixed ``PROVIDER:`` (e.g. ``"deepseek:deepseek-chat"``) or ``replay:PATH``;
    without a prefix it uses the primary's provider (and base URL). ``template``: the raw prompt
    format (``v3.1``, ``v3.1-terminus``, ``v3-0324``, ``r1``; default from the model id). No ``model``: the provider's
    default (``providers.default_model``; a self-hosted server's first listed model).
    """
    if template is not None:
        client_kw["template"] = template
    primary = _one(model, provider, base_url, api_key, settings, **client_kw)
    if not fallbacks:
        return primary
    chain = [primary]
    for spec in fallbacks:
        fb_provider, fb_model = _split_spec(spec)
        if fb_provider is None:
            chain.append(_one(fb_model, provider or getattr(primary, "provider", None), base_url, api_key, settings,
                              **client_kw))
        else:
            chain.append(_one(fb_model, fb_provider, None, None, settings, **client_kw))
    return Fallback(chain)


def _split_spec(spec: str) -> tuple[str | None, str]:
    head, sep, rest = spec.partition(":")
    if sep and head in (*PROVIDERS, "raw") and rest:
        return head, rest
    return None, spec


def _one(model: str | None, provider: str | None, base_url: str | None, api_key: str | None,
         settings: ModelSettings | None, **client_kw: Any) -> Model:
    if not model:
        from agentkit.models.providers import default_model

        if provider is None:
            provider = infer_provider("", base_url) if base_url else "openrouter"
        model = default_model(provider, base_url, api_key, thinking=settings.thinking if settings else None)
    if model.startswith("replay:"):
        from agentkit.models.replay import Replay

        path = model[len("replay:"):]
        if not path:
            raise ConfigError("replay needs a script path: model='replay:PATH'")
        return Replay(path)
    if provider == "raw":
        if not base_url:
            raise ConfigError("provider 'raw' needs base_url=URL of a /v1/completions server")
        from agentkit.models.raw_deepseek import RawDeepSeek

        kw: dict[str, Any] = {"api_key": api_key, "version": client_kw.get("template")}
        if settings is not None:
            kw["settings"] = settings
        return RawDeepSeek(model, base_url, **kw)
    client_kw.pop("template", None)  # chat endpoints apply their own template
    if provider is None or provider == "replay":
        provider = infer_provider(model, base_url)
    return OpenAICompatible(model, base_url=base_url, api_key=api_key, provider=provider, settings=settings,
                            **client_kw)
