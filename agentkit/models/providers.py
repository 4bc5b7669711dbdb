"""Provider presets: base URL, key variable, and how each maps the one ``thinking`` switch and
its own quirks onto the request. Everything provider-specific lives here, so the client itself
sends the same thing everywhere except where a preset says otherwise."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from agentkit.errors import ConfigError

ThinkingStyle = Literal["openrouter", "model_name", "thinking_type", "chat_template_kwargs", "none"]
GENERIC_KEY_ENV = "AGENTKIT_API_KEY"


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str | None
    key_env: str  # where the key comes from (AGENTKIT_API_KEY is also accepted)
    thinking_style: ThinkingStyle
    key_required: bool = True  # self-hosted servers usually take no key
    empty_assistant_content: bool = False  # send "" instead of null for assistant content (llama.cpp: null -> 500)
    reasoning_echo: Literal["all", "tool_turns", "none"] = "all"  # which assistant turns carry reasoning back
    stream_usage_option: bool = True  # send stream_options.include_usage when streaming
    description: str = ""

    def apply_thinking(self, body: dict[str, Any], thinking: bool | None) -> None:
        """Map the single thinking switch onto this provider's field (``None``: send nothing)."""
        if thinking is None or self.thinking_style == "none":
            return
        if self.thinking_style == "openrouter":
            reasoning = dict(body.get("reasoning") or {})
            reasoning.setdefault("enabled", thinking)
            body["reasoning"] = reasoning
        elif self.thinking_style == "model_name":
            model = str(body.get("model", ""))
            if thinking and model == "deepseek-chat":
                body["model"] = "deepseek-reasoner"
            elif not thinking and model == "deepseek-reasoner":
                body["model"] = "deepseek-chat"
        elif self.thinking_style == "thinking_type":
            body["thinking"] = {"type": "enabled" if thinking else "disabled"}
        elif self.thinking_style == "chat_template_kwargs":
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

    @property
    def adapt_key(self) -> tuple[Any, ...]:
        """Everything ``adapt_message`` depends on: a cache key for adapted messages."""
        return (self.empty_assistant_content, self.reasoning_echo)

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
             description="OpenRouter; thinking via reasoning.enabled"),
    # V3.1-era official API: mode by model name; it rejects reasoning_content sent back (400),
    # while V3.2+ wants it on tool-calling turns: echo it on those only.
    Provider("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "model_name",
             reasoning_echo="tool_turns", description="DeepSeek API; thinking = deepseek-reasoner"),
    Provider("atlascloud", "https://api.atlascloud.ai/v1", "ATLASCLOUD_API_KEY", "thinking_type",
             description="Atlas Cloud; thinking via thinking.type"),
    Provider("vllm", "http://127.0.0.1:8000/v1", GENERIC_KEY_ENV, "chat_template_kwargs", key_required=False,
             description="self-hosted vLLM; chat_template_kwargs.thinking"),
    Provider("sglang", "http://127.0.0.1:30000/v1", GENERIC_KEY_ENV, "chat_template_kwargs", key_required=False,
             description="self-hosted SGLang; chat_template_kwargs.thinking"),
    Provider("llamacpp", "http://127.0.0.1:8080/v1", GENERIC_KEY_ENV, "chat_template_kwargs", key_required=False,
             empty_assistant_content=True, description="llama.cpp / llama-cpp-python server"),
    Provider("openai-compatible", None, GENERIC_KEY_ENV, "chat_template_kwargs",
             description="any OpenAI-compatible endpoint (needs --base-url)"),
)}


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
        raise ConfigError(f"provider {provider.name!r} needs a base URL: pass --base-url "
                          "(e.g. http://127.0.0.1:8000/v1)")
    return url.rstrip("/")


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
