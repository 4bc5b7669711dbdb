"""Provider presets: base URL, key variable, and how each maps the one ``thinking`` switch and
its own quirks onto the request. Everything provider-specific lives here, so the client itself
sends the same thing everywhere except where a preset says otherwise."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from agentkit.errors import ConfigError

ThinkingStyle = Literal["openrouter", "model_name", "thinking_type", "chat_template_kwargs", "none"]
ReasoningEcho = Literal["all", "tool_turns", "none"]
GENERIC_KEY_ENV = "AGENTKIT_API_KEY"


@dataclass(frozen=True)
class ModelRule:
    """A provider's rule for some of its models: how the thinking switch is sent and which
    assistant turns carry their reasoning back. ``match`` is an exact id, or a prefix ending in ``*``."""

    match: str
    thinking_style: ThinkingStyle
    reasoning_echo: ReasoningEcho

    def matches(self, model: str) -> bool:
        return model.startswith(self.match[:-1]) if self.match.endswith("*") else model == self.match


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str | None
    key_env: str  # where the key comes from (AGENTKIT_API_KEY is also accepted)
    thinking_style: ThinkingStyle
    key_required: bool = True  # self-hosted servers usually take no key
    empty_assistant_content: bool = False  # send "" instead of null for assistant content (llama.cpp: null -> 500)
    reasoning_echo: ReasoningEcho = "all"  # which assistant turns carry reasoning back
    stream_usage_option: bool = True  # send stream_options.include_usage when streaming
    description: str = ""
    default_model: str | None = None  # None: the first id the server lists at GET {base_url}/models
    thinking_model: str | None = None  # the default model when thinking is on (else default_model)
    # Per-model exceptions to thinking_style / reasoning_echo (first match wins); every other
    # model, known to the catalog or not, gets the provider's generic rule above.
    model_rules: tuple[ModelRule, ...] = ()

    def rule_for(self, model: str) -> tuple[ThinkingStyle, ReasoningEcho]:
        for rule in self.model_rules:
            if rule.matches(model):
                return rule.thinking_style, rule.reasoning_echo
        return self.thinking_style, self.reasoning_echo

    def apply_thinking(self, body: dict[str, Any], thinking: bool | None) -> None:
        """Map the single thinking switch onto this provider's field (``None``: send nothing)."""
        style = self.rule_for(str(body.get("model", "")))[0]
        if thinking is None or style == "none":
            return
        if style == "openrouter":
            reasoning = dict(body.get("reasoning") or {})
            reasoning.setdefault("enabled", thinking)
            body["reasoning"] = reasoning
        elif style == "model_name":
            model = str(body.get("model", ""))
            if thinking and model == "deepseek-chat":
                body["model"] = "deepseek-reasoner"
            elif not thinking and model == "deepseek-reasoner":
                body["model"] = "deepseek-chat"
        elif style == "thinking_type":
            body["thinking"] = {"type": "enabled" if thinking else "disabled"}
        elif style == "chat_template_kwargs":
            kwargs = dict(body.get("chat_template_kwargs") or {})
            kwargs["thinking"] = thinking
            body["chat_template_kwargs"] = kwargs

    def headers(self, app_url: str | None = None, app_title: str | None = None) -> dict[str, str]:
        if self.name != "openrouter":
            return {}
        out = {}
        if app_url:
            out["HTTP-Referer"] = app_url
        if app_title:
            out["X-Title"] = app_title
            out["X-OpenRouter-Title"] = app_title
        return out

    def for_model(self, model: str) -> "Provider":
        """This preset with ``reasoning_echo`` resolved for ``model`` (the thinking switch renames a
        model only between ids that share a rule, so the rule of the client's model holds)."""
        echo = self.rule_for(model)[1]
        return self if echo == self.reasoning_echo else replace(self, reasoning_echo=echo)

    def adapt_message(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Per-provider fixes to one outgoing message dict."""
        if msg.get("role") != "assistant":
            return msg
        msg = dict(msg)
        if self.empty_assistant_content and msg.get("content") is None:
            msg["content"] = ""
        keep = self.reasoning_echo == "all" or (self.reasoning_echo == "tool_turns" and msg.get("tool_calls"))
        if not keep:
            for k in ("reasoning_content", "reasoning", "reasoning_details"):
                msg.pop(k, None)
        return msg


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openrouter",
             default_model="deepseek/deepseek-chat-v3.1",
             description="OpenRouter; thinking via reasoning.enabled"),
    # The DeepSeek API. Its V3.1-era aliases choose the mode by model name, and the V3.1-era
    # deepseek-reasoner rejects reasoning_content sent back (400): never echo it to them. Every other
    # model it serves (V3.2 and later) takes thinking: {type} and requires reasoning_content back
    # on tool-calling turns (else 400): echo it on those only.
    Provider("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "thinking_type",
             reasoning_echo="tool_turns", default_model="deepseek-chat", thinking_model="deepseek-reasoner",
             model_rules=(ModelRule("deepseek-chat", "model_name", "none"),
                          ModelRule("deepseek-reasoner", "model_name", "none")),
             description="DeepSeek API; thinking = deepseek-reasoner (V3.1-era aliases), else thinking.type"),
    Provider("atlascloud", "https://api.atlascloud.ai/v1", "ATLASCLOUD_API_KEY", "thinking_type",
             default_model="deepseek-ai/DeepSeek-V3.1", description="Atlas Cloud; thinking via thinking.type"),
    Provider("vllm", "http://127.0.0.1:8000/v1", GENERIC_KEY_ENV, "chat_template_kwargs", key_required=False,
             description="self-hosted vLLM; chat_template_kwargs.thinking"),
    Provider("sglang", "http://127.0.0.1:30000/v1", GENERIC_KEY_ENV, "chat_template_kwargs", key_required=False,
             description="self-hosted SGLang; chat_template_kwargs.thinking"),
    Provider("llamacpp", "http://127.0.0.1:8080/v1", GENERIC_KEY_ENV, "chat_template_kwargs", key_required=False,
             empty_assistant_content=True, description="llama.cpp / llama-cpp-python server"),
    Provider("openai-compatible", None, GENERIC_KEY_ENV, "chat_template_kwargs",
             description="any OpenAI-compatible endpoint (needs --base-url)"),
)}


def default_model(provider: str, base_url: str | None = None, api_key: str | None = None,
                  thinking: bool | None = None, timeout_s: float = 15.0) -> str:
    """The model a provider runs when none is given: its own default, or for a self-hosted
    server (and ``raw``) the first id it lists at ``GET {base_url}/models``."""
    preset = PROVIDERS.get(provider)
    if preset is not None and preset.default_model:
        return (preset.thinking_model if thinking and preset.thinking_model else preset.default_model)
    return first_listed_model(provider, base_url, api_key, timeout_s)


def first_listed_model(provider: str, base_url: str | None, api_key: str | None = None,
                       timeout_s: float = 15.0) -> str:
    import httpx

    if not base_url:
        raise ConfigError(f"provider {provider!r} needs base_url=URL (and model=NAME, or a server that lists its models)")
    url = base_url.rstrip("/") + "/models"
    key = api_key or os.environ.get(GENERIC_KEY_ENV)
    try:
        resp = httpx.get(url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=timeout_s)
        data = resp.json() if resp.status_code < 400 else None
    except (httpx.HTTPError, ValueError):
        data = None
    items = data.get("data") if isinstance(data, dict) else data
    ids = [m.get("id") for m in items if isinstance(m, dict) and m.get("id")] if isinstance(items, list) else []
    if not ids:
        raise ConfigError(f"no model given and {url} lists none: pass model=NAME")
    return str(ids[0])


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ConfigError(f"unknown provider {name!r}; choose one of: {', '.join(PROVIDERS)} (or 'raw')") from None


def is_local_url(url: str) -> bool:
    """Loopback, private-network and ``localhost`` hosts: servers there usually need no key."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified or ip.is_link_local


def infer_provider(model: str, base_url: str | None = None) -> str:
    """Guess the preset from the base URL's host, else from the model id's shape."""
    if base_url:
        host = (urlsplit(base_url).hostname or "").lower()
        for needle, name in (("openrouter.ai", "openrouter"), ("deepseek.com", "deepseek"),
                             ("atlascloud.ai", "atlascloud")):
            if host == needle or host.endswith("." + needle):
                return name
        return "openai-compatible"
    if model in ("deepseek-chat", "deepseek-reasoner"):
        return "deepseek"
    if model.startswith("deepseek-ai/"):
        return "atlascloud"
    return "openrouter"


def resolve_base_url(provider: Provider, base_url: str | None) -> str:
    url = base_url or provider.base_url
    if not url:
        raise ConfigError(f"provider {provider.name!r} needs a base URL: pass base_url=URL "
                          "(e.g. http://127.0.0.1:8000/v1)")
    return url.rstrip("/")


def key_source(provider: Provider, api_key: str | None = None, env: dict[str, str] | None = None) -> str:
    """Where ``resolve_api_key`` takes the key from, as a 401 should name it: the ``api_key`` argument,
    the provider's variable, or AGENTKIT_API_KEY when only that one is set."""
    env = os.environ if env is None else env
    if api_key:
        return "the api_key argument"
    if not env.get(provider.key_env) and env.get(GENERIC_KEY_ENV):
        return GENERIC_KEY_ENV
    return provider.key_env


def resolve_api_key(provider: Provider, base_url: str, api_key: str | None = None,
                    env: dict[str, str] | None = None) -> str | None:
    """The key to send: explicit, else the provider's variable, else AGENTKIT_API_KEY. Missing
    is an error only for a remote endpoint of a preset that needs one."""
    env = os.environ if env is None else env
    key = api_key or env.get(provider.key_env) or env.get(GENERIC_KEY_ENV)
    if key:
        return key
    if provider.key_required and not is_local_url(base_url):
        raise ConfigError(f"no API key for {provider.name}: set {provider.key_env}"
                          + (f" (or {GENERIC_KEY_ENV})" if provider.key_env != GENERIC_KEY_ENV else ""))
    return None
