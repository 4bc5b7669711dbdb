"""Known models: context window, output limit, prices and capabilities.

The loop asks ``lookup(model)`` for the context window and for cost limits; the client uses
``cost_usd`` when the provider does not report a cost itself. Prices are list prices in USD per
million tokens as published by the provider (snapshot dates in ``prices_as_of``); providers change
them, so a provider-reported ``usage.cost`` always wins. An unknown model is not an error: its
cost is simply unknown (``None``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.messages import Usage


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    provider: str  # the preset that serves it under this id
    context_window: int  # tokens, prompt + output
    max_output: int  # tokens the provider lets one call generate
    input_per_m: float  # USD per million prompt tokens (cache miss)
    output_per_m: float  # USD per million completion tokens (reasoning included)
    cache_hit_per_m: float | None = None  # USD per million cached prompt tokens, where priced separately
    thinking: bool = True  # can reason (hybrid models switch it per request)
    tools: bool = True  # native tool calling through chat completions
    thinking_tools: bool = False  # tool calls allowed while thinking
    family: str = "deepseek-v3.1"
    prices_as_of: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = Field(default_factory=tuple)

    def cost(self, prompt: int, completion: int, cached: int = 0) -> float:
        """USD for one call; cached prompt tokens use the cache-hit price when there is one."""
        cached = min(max(cached, 0), prompt)
        hit_price = self.input_per_m if self.cache_hit_per_m is None else self.cache_hit_per_m
        return ((prompt - cached) * self.input_per_m + cached * hit_price + completion * self.output_per_m) / 1e6


_OR = "2025-09 (openrouter.ai model pages)"
MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(id="deepseek/deepseek-chat-v3.1", provider="openrouter", context_window=163_840, max_output=163_840,
              input_per_m=0.20, output_per_m=0.80, prices_as_of=_OR,
              notes="hybrid; thinking via reasoning.enabled"),
    ModelInfo(id="deepseek/deepseek-chat-v3.1:free", provider="openrouter", context_window=163_840,
              max_output=163_840, input_per_m=0.0, output_per_m=0.0, prices_as_of=_OR,
              notes="free variant: 20 requests/min, daily cap"),
    ModelInfo(id="deepseek/deepseek-v3.1-terminus", provider="openrouter", context_window=163_840,
              max_output=163_840, input_per_m=0.23, output_per_m=0.90, prices_as_of=_OR,
              notes="V3.1 update with better agent/search behaviour", family="deepseek-v3.1-terminus"),
    ModelInfo(id="deepseek/deepseek-r1", provider="openrouter", context_window=163_840, max_output=163_840,
              input_per_m=0.40, output_per_m=2.00, tools=False, prices_as_of=_OR, family="deepseek-r1",
              notes="always thinks; legacy tool-call grammar"),
    ModelInfo(id="deepseek/deepseek-r1:free", provider="openrouter", context_window=163_840, max_output=163_840,
              input_per_m=0.0, output_per_m=0.0, tools=False, prices_as_of=_OR, family="deepseek-r1"),
    ModelInfo(id="deepseek/deepseek-chat-v3-0324", provider="openrouter", context_window=163_840,
              max_output=163_840, input_per_m=0.27, output_per_m=1.10, thinking=False, prices_as_of=_OR,
              family="deepseek-v3-0324", notes="non-thinking predecessor"),
    ModelInfo(id="deepseek-ai/DeepSeek-V3.1", provider="atlascloud", context_window=131_072, max_output=32_768,
              input_per_m=0.25, output_per_m=1.00, prices_as_of="2025-09 (atlascloud.ai model page)",
              notes="also the Hugging Face id served by vLLM/SGLang; thinking via thinking.type"),
    ModelInfo(id="deepseek-chat", provider="deepseek", context_window=131_072, max_output=8_192,
              input_per_m=0.56, output_per_m=1.68, cache_hit_per_m=0.07, thinking=False,
              prices_as_of="2025-09-05 (api-docs.deepseek.com pricing)",
              notes="DeepSeek API alias: V3.1 non-thinking in the V3.1 era; output default 4K"),
    ModelInfo(id="deepseek-reasoner", provider="deepseek", context_window=131_072, max_output=65_536,
              input_per_m=0.56, output_per_m=1.68, cache_hit_per_m=0.07, tools=False,
              prices_as_of="2025-09-05 (api-docs.deepseek.com pricing)",
              notes="DeepSeek API alias: V3.1 thinking; no function calling in the V3.1 era; output default 32K"),
)

_BY_ID: dict[str, ModelInfo] = {}
for _m in MODELS:
    _BY_ID[_m.id.lower()] = _m
    for _a in _m.aliases:
        _BY_ID[_a.lower()] = _m


def lookup(model: str | None) -> ModelInfo | None:
    """The catalog entry for ``model`` (case-insensitive; an ``openrouter/`` or ``provider:``
    prefix and a Hugging Face ``deepseek-ai/`` id are understood), or None when unknown."""
    if not model:
        return None
    key = model.strip().lower()
    for candidate in (key, key.removeprefix("openrouter/")):
        if candidate in _BY_ID:
            return _BY_ID[candidate]
    return None


def all_models() -> list[ModelInfo]:
    return list(MODELS)


def cost_from_usage(model: str | None, raw_usage: dict[str, Any] | None, usage: Usage) -> float | None:
    """The call's cost: the provider's ``usage.cost`` when it sent one, else the catalog price
    (cache hits included), else None (unknown model)."""
    if raw_usage and isinstance(raw_usage.get("cost"), (int, float)) and not isinstance(raw_usage["cost"], bool):
        return float(raw_usage["cost"])
    info = lookup(model)
    if info is None:
        return None
    return info.cost(usage.prompt, usage.completion, usage.cached)
