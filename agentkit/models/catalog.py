"""Known models: context window, output limit, prices and capabilities.

The loop asks ``lookup(model)`` for the context window and for cost limits; the client uses
``cost_usd`` when the provider does not report a cost itself. Prices are list prices in USD per
million tokens as published by the provider (snapshot dates in ``prices_as_of``); providers change
them, so a provider-reported ``usage.cost`` always wins. An unknown model is not an error: its
cost is simply unknown (``None``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.messages import Usage


class Endpoint(BaseModel):
    """One provider serving a model on OpenRouter, with its own window, output limit and prices.
    ``name`` is OpenRouter's provider name (what ``provider.order``/``only`` takes), where known;
    ``label`` what the model page shows (region, quantization)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    name: str | None = None
    context_window: int
    max_output: int
    input_per_m: float
    output_per_m: float


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
    endpoints: tuple[Endpoint, ...] = ()  # per-provider figures; the entry itself is the default route
    source: str = "built-in"  # or "openrouter cache" (agentkit models --refresh), "--price"

    def routed(self, routing: dict[str, Any] | None) -> "ModelInfo":
        """This entry for a run pinned to a provider (OpenRouter ``provider.only`` / ``order``, first
        match by name or label): that provider's window, output limit and prices."""
        wanted = [str(x).lower() for key in ("only", "order") for x in ((routing or {}).get(key) or [])]
        for want in wanted:
            for e in self.endpoints:
                if want in ((e.name or "").lower(), e.label.lower()):
                    return self.model_copy(update={"context_window": e.context_window, "max_output": e.max_output,
                                                   "input_per_m": e.input_per_m, "output_per_m": e.output_per_m,
                                                   "notes": f"routed to {e.name or e.label}"})
        return self

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
    ModelInfo(id="deepseek/deepseek-chat-v3.1:free", provider="openrouter", context_window=64_000,
              max_output=64_000, input_per_m=0.0, output_per_m=0.0, prices_as_of=_OR,
              notes="free variant: 20 requests/min, daily cap"),
    ModelInfo(id="deepseek/deepseek-v3.1-terminus", provider="openrouter", context_window=163_840,
              max_output=163_840, input_per_m=0.27, output_per_m=0.95, prices_as_of=_OR,
              notes="V3.1 update with better agent/search behaviour", family="deepseek-v3.1-terminus"),
    ModelInfo(id="deepseek/deepseek-r1", provider="openrouter", context_window=163_840, max_output=163_840,
              input_per_m=0.40, output_per_m=2.00, tools=False, prices_as_of=_OR, family="deepseek-r1",
              notes="always thinks; legacy tool-call grammar"),
    ModelInfo(id="deepseek/deepseek-r1:free", provider="openrouter", context_window=163_840, max_output=163_840,
              input_per_m=0.0, output_per_m=0.0, tools=False, prices_as_of=_OR, family="deepseek-r1"),
    # OpenRouter's default routing prefers the cheapest provider: the entry is that provider's
    # (CN, fp8, 64K/8K); the page's eight providers are the endpoints, for runs pinned to one.
    ModelInfo(id="deepseek/deepseek-chat-v3-0324", provider="openrouter", context_window=64_000,
              max_output=8_000, input_per_m=0.27, output_per_m=1.10, thinking=False, prices_as_of=_OR,
              family="deepseek-v3-0324", notes="non-thinking predecessor; window and price of the cheapest provider",
              endpoints=(
                  Endpoint(label="CN fp8", context_window=64_000, max_output=8_000, input_per_m=0.27,
                           output_per_m=1.10),
                  Endpoint(label="US fp8 (1)", context_window=163_840, max_output=163_840, input_per_m=0.40,
                           output_per_m=0.89),
                  Endpoint(label="US", context_window=128_000, max_output=16_000, input_per_m=0.40,
                           output_per_m=1.30),
                  Endpoint(label="US fp8 (2)", context_window=128_000, max_output=33_000, input_per_m=0.75,
                           output_per_m=1.50),
                  Endpoint(label="8K", context_window=8_000, max_output=8_000, input_per_m=1.00, output_per_m=1.50),
                  Endpoint(label="US fp8 (3)", context_window=163_840, max_output=163_840, input_per_m=1.15,
                           output_per_m=1.20),
                  Endpoint(label="US fp8 (4)", context_window=163_840, max_output=163_840, input_per_m=1.25,
                           output_per_m=1.25),
                  Endpoint(label="64K", context_window=64_000, max_output=64_000, input_per_m=1.25,
                           output_per_m=1.25),
              )),
    ModelInfo(id="deepseek-ai/DeepSeek-V3.1", provider="atlascloud", context_window=128_000, max_output=32_768,
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
    prefix and a Hugging Face ``deepseek-ai/`` id are understood), or None when unknown. A price
    given with ``--price`` wins, then the OpenRouter cache (``agentkit models --refresh``), then
    the built-in table."""
    if not model:
        return None
    key = model.strip().lower()
    tables = (_USER_PRICES, _cache(), _BY_ID)
    for table in tables:
        for candidate in (key, key.removeprefix("openrouter/")):
            if candidate in table:
                return table[candidate]
    return None


def all_models() -> list[ModelInfo]:
    """The built-in table, with the OpenRouter cache's figures over it and its other models after."""
    cache = _cache()
    out = [cache.get(m.id.lower(), m) for m in MODELS]
    seen = {m.id.lower() for m in MODELS}
    return out + [m for k, m in sorted(cache.items()) if k not in seen]


# -- prices the user gives (--price) ---------------------------------------------------------------
_USER_PRICES: dict[str, ModelInfo] = {}


def set_price(model: str, input_per_m: float, output_per_m: float) -> ModelInfo:
    """Price ``model`` for this process (``--price IN,OUT``): costs and ``--max-cost`` use it."""
    base = lookup(model)
    info = (base.model_copy(update={"input_per_m": input_per_m, "output_per_m": output_per_m,
                                    "cache_hit_per_m": None, "source": "--price"}) if base else
            ModelInfo(id=model, provider="", context_window=0, max_output=0, input_per_m=input_per_m,
                      output_per_m=output_per_m, source="--price"))
    _USER_PRICES[model.strip().lower()] = info
    return info


def parse_price(text: str) -> tuple[float, float]:
    """``"IN,OUT"`` (USD per million tokens) as two floats; ValueError otherwise."""
    parts = [p.strip().lstrip("$") for p in text.split(",")]
    if len(parts) != 2:
        raise ValueError(f"--price takes IN,OUT in USD per million tokens (e.g. 0.27,1.10), not {text!r}")
    values = float(parts[0]), float(parts[1])
    if min(values) < 0:
        raise ValueError("--price: prices cannot be negative")
    return values


# -- the OpenRouter cache (agentkit models --refresh) ----------------------------------------------
OPENROUTER_API = "https://openrouter.ai/api/v1"
_CACHE: dict[str, Any] = {"path": None, "mtime": None, "table": {}, "checked": 0.0, "env": None}


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/agentkit/openrouter-models.json`` (``~/.cache/agentkit/...``)."""
    root = os.environ.get("XDG_CACHE_HOME") or ""
    base = Path(root) if os.path.isabs(root) else Path.home() / ".cache"
    return base / "agentkit" / "openrouter-models.json"


_PATHS: dict[tuple[str | None, str | None], Path] = {}  # cache_path() by the variables it reads
_RECHECK_S = 1.0  # how stale the cache file's table may be (another process may refresh it)


def _cache() -> dict[str, ModelInfo]:
    """The cache file's table, read again when the file changes. Every priced call looks here
    (hundreds of concurrent runs make that thousands a second), so the path is worked out once
    per ($XDG_CACHE_HOME, $HOME) and the file is looked at again after ``_RECHECK_S`` at most;
    ``refresh`` here is seen at once."""
    env = (os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME"))
    now = time.monotonic()
    if env == _CACHE["env"] and now - _CACHE["checked"] < _RECHECK_S:
        return _CACHE["table"]  # type: ignore[no-any-return]
    path = _PATHS.get(env)
    if path is None:
        path = _PATHS[env] = cache_path()
    _CACHE["checked"], _CACHE["env"] = now, env
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        _CACHE.update(path=path, mtime=None, table={})
        return {}
    if _CACHE["path"] != path or _CACHE["mtime"] != mtime:
        table: dict[str, ModelInfo] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for entry in data.get("models", []):
                info = ModelInfo(**entry)
                table[info.id.lower()] = info
        except (OSError, ValueError, TypeError):
            table = {}
        _CACHE.update(path=path, mtime=mtime, table=table)
    return _CACHE["table"]  # type: ignore[no-any-return]


def _from_openrouter(entry: dict[str, Any], fetched: str) -> ModelInfo | None:
    """One entry of OpenRouter's ``GET /api/v1/models`` (pricing is USD per token, as strings)."""
    try:
        model_id = str(entry["id"])
        pricing = entry.get("pricing") or {}
        window = int(entry.get("context_length") or (entry.get("top_provider") or {}).get("context_length"))
        max_out = (entry.get("top_provider") or {}).get("max_completion_tokens") or window
        cache_read = pricing.get("input_cache_read")
        params = entry.get("supported_parameters")
    except (KeyError, TypeError, ValueError):
        return None
    try:
        p_in, p_out = float(pricing["prompt"]) * 1e6, float(pricing["completion"]) * 1e6
    except (KeyError, TypeError, ValueError):
        return None
    if p_in < 0 or p_out < 0:  # OpenRouter prices its router models at -1: no fixed price
        return None
    base = _BY_ID.get(model_id.lower())
    fields: dict[str, Any] = dict(base.model_dump()) if base else {
        "id": model_id, "provider": "openrouter", "family": "", "thinking": "reasoning" in (params or []),
        "tools": params is None or "tools" in params}
    fields.update(context_window=window, max_output=int(max_out), input_per_m=round(p_in, 6),
                  output_per_m=round(p_out, 6), prices_as_of=f"{fetched} (OpenRouter /models)",
                  source="openrouter cache")
    if cache_read not in (None, ""):
        try:
            fields["cache_hit_per_m"] = round(float(cache_read) * 1e6, 6)
        except (TypeError, ValueError):
            pass
    if base is not None and base.endpoints:  # the page's default route is what /models reports
        fields["endpoints"] = base.endpoints
    return ModelInfo(**fields)


def refresh(api_base: str = OPENROUTER_API, timeout_s: float = 30.0) -> tuple[Path, int]:
    """Read OpenRouter's public model list into the user cache; (path, models written)."""
    import datetime as _dt

    import httpx

    url = api_base.rstrip("/") + "/models"
    resp = httpx.get(url, timeout=timeout_s)
    resp.raise_for_status()
    data = resp.json()
    fetched = _dt.date.today().isoformat()
    models = [m for m in (_from_openrouter(e, fetched) for e in (data.get("data") or []) if isinstance(e, dict))
              if m is not None]
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"source": url, "fetched": fetched,
                               "models": [m.model_dump(mode="json") for m in models]}, indent=1), encoding="utf-8")
    tmp.replace(path)
    _CACHE["checked"] = 0.0  # read it on the next lookup
    return path, len(models)


def cost_from_usage(model: str | None, raw_usage: dict[str, Any] | None, usage: Usage) -> float | None:
    """The call's cost: the provider's ``usage.cost`` when it sent one, else the catalog price
    (cache hits included), else None (unknown model)."""
    if raw_usage and isinstance(raw_usage.get("cost"), (int, float)) and not isinstance(raw_usage["cost"], bool):
        return float(raw_usage["cost"])
    info = lookup(model)
    if info is None:
        return None
    return info.cost(usage.prompt, usage.completion, usage.cached)
