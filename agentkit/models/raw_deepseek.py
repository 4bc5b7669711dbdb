"""``RawDeepSeek``: DeepSeek through a server's raw ``/v1/completions`` endpoint.

For self-hosted servers (vLLM, SGLang, llama.cpp) whose chat template or tool parser we do not
trust: we render the prompt ourselves (``agentkit.deepseek.render``, byte-identical to the
official template, tools as the model card's block, or the search-agent format), send it as
text, and parse the completion with ``agentkit.deepseek.parse``. So the model sees exactly the
documented code-agent and search-agent formats whatever the server is configured with.

Retries reuse ``agentkit.models.retry`` (same policy as the chat client); one shared
``httpx.AsyncClient`` per event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from agentkit.errors import ModelError
from agentkit.deepseek.render import SearchAgentFormat, render_prompt, template_for_model
from agentkit.deepseek.parse import ParsedCompletion, StreamParser, parse_completion
from agentkit.deepseek.special import BOS, EOS, OUTPUT_BEGIN, USER
from agentkit.messages import AssistantMessage, Message, Usage
from agentkit.models.clients import TRANSPORT_ERRORS
from agentkit.models.http import HTTPModel
from agentkit.models.base import (
    Completion,
    CompletionDelta,
    ModelSettings,
    OnEvent,
    ToolCallDelta,
)
from agentkit.models.retry import Backoff, stream_error

log = logging.getLogger("agentkit.models")

# Where a turn is over: end of sentence; a new user turn or a tool output the model should not write.
DEFAULT_STOP = (EOS, USER, OUTPUT_BEGIN)
# ModelSettings fields a /v1/completions server understands, sent under the same name.
_PASSTHROUGH = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "frequency_penalty",
                "presence_penalty", "seed", "logit_bias", "response_format", "structured_outputs", "user")
KEY_ENV = "AGENTKIT_API_KEY"
TEMPLATES = ("v3.1", "v3.1-terminus", "v3-0324", "r1")  # --template
DEFAULT_WINDOW = 131_072  # V3.1's 128K, for a model the catalog does not know


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class RawDeepSeek(HTTPModel):
    """The ``Model`` protocol over ``/v1/completions`` with our own DeepSeek renderer and parser.

    ``search_format``: ``None`` (default) uses ``SearchAgentFormat`` for thinking turns and the
    official template otherwise; ``True`` or a ``SearchAgentFormat`` always uses that format;
    ``False`` always the official template. ``stop`` is sent with every request, plus
    ``settings.stop``.
    """

    def __init__(self, model: str, base_url: str, api_key: str | None = None, version: str | None = None,
                 search_format: bool | SearchAgentFormat | None = None, settings: ModelSettings | None = None,
                 provider: str = "raw", headers: dict[str, str] | None = None, timeout_s: float = 600.0,
                 connect_timeout_s: float = 15.0, max_retries: int = 4, backoff: Backoff | None = None,
                 stop: tuple[str, ...] | list[str] = DEFAULT_STOP, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        version = version or template_for_model(model)  # the --template; default from the model id
        if version not in TEMPLATES:
            raise ValueError(f"unknown DeepSeek prompt template {version!r}; use {', '.join(TEMPLATES)}")
        self.name = model
        self.provider = provider
        self.template = version
        self.version = "v3.1" if version == "v3.1-terminus" else version  # Terminus uses V3.1's template
        # None = automatic: thinking turns (V3.1) use the search-agent format, which equals the official
        # template for a fresh turn and also keeps the turn's reasoning across its tool calls, something
        # the official template cannot express. False = always the official template.
        self.search_format: SearchAgentFormat | None = (
            search_format if isinstance(search_format, SearchAgentFormat)
            else SearchAgentFormat() if search_format else None)
        self.auto_search_format = search_format is None and version == "v3.1"
        base = base_url.rstrip("/")
        self.base_url = base if base.rsplit("/", 1)[-1].startswith("v1") else base + "/v1"
        self.key_source = KEY_ENV
        self._init_http(api_key=api_key if api_key is not None else os.environ.get(KEY_ENV), headers=headers,
                        timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
                        max_retries=max_retries, backoff=backoff, transport=transport, sleep=sleep)
        self.settings = settings or ModelSettings()
        self.stop = list(stop)

    def __repr__(self) -> str:  # never shows the key
        return f"RawDeepSeek(model={self.name!r}, base_url={self.base_url!r}, version={self.version!r})"

    # ------------------------------------------------------------------ prompt
    def render(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
               settings: ModelSettings | None = None) -> tuple[str, bool]:
        """(prompt text, whether the completion starts inside the reasoning)."""
        s = self.settings.merged(settings)
        if s.tool_choice == "none":
            tools = None
        fmt = self.search_format
        if fmt is None and self.auto_search_format and s.thinking:
            fmt = SearchAgentFormat()
        if fmt is not None:
            if s.thinking is False and fmt.thinking:
                fmt = SearchAgentFormat(thinking=False)
            return fmt.render(messages, tools), fmt.starts_in_reasoning(messages)
        thinking = bool(s.thinking)
        prompt = render_prompt(messages, tools, thinking=thinking, version=self.version)
        if self.version == "r1":
            return prompt, prompt.endswith("<think>\n")
        return prompt, self.version == "v3.1" and thinking and prompt.endswith("<think>")

    def build_body(self, prompt: str, s: ModelSettings, stream: bool) -> dict[str, Any]:
        """The request. The rendered prompt starts with BOS, and vLLM, SGLang and llama.cpp each
        add one when they tokenize a /v1/completions prompt (the tokenizer's add_bos setting):
        the prompt goes without its own, so the server's token stream has exactly one. Without
        ``max_tokens`` servers stop early (vLLM and SGLang after 16 tokens): the default is the
        smaller of the model's max output and what is left of its window."""
        body: dict[str, Any] = {"model": self.name, "prompt": prompt[len(BOS):] if prompt.startswith(BOS) else prompt}
        for field in _PASSTHROUGH:
            value = getattr(s, field)
            if value is not None:
                body[field] = value
        if body.get("max_tokens") is None:
            body["max_tokens"] = self.default_max_tokens(prompt)
        extra = [s.stop] if isinstance(s.stop, str) else list(s.stop or [])
        body["stop"] = self.stop + [x for x in extra if x not in self.stop]
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if s.extra_body:
            body = _deep_merge(body, s.extra_body)
        return body

    def default_max_tokens(self, prompt: str) -> int:
        """The ``max_tokens`` sent when none is set: the model's max output, or what is left of its window
        after ``prompt``.
        """
        from agentkit.models.catalog import lookup

        info = lookup(self.name)
        window = info.context_window if info else DEFAULT_WINDOW
        max_output = info.max_output if info else window
        try:
            from agentkit.deepseek.tokens import count_text

            used = count_text(prompt)
        except ImportError:  # no offline tokenizer: a rough count, on the safe side
            used = len(prompt.encode("utf-8")) // 2
        return max(1, min(max_output, window - used))

    # ------------------------------------------------------------------ plumbing
    def _usage(self, raw: Any, prompt: str, text: str, model: str) -> Usage:
        try:
            from agentkit.models.assemble import usage_from_raw

            usage = usage_from_raw(raw, model)
        except ImportError:
            usage = None
        if usage is not None:
            return usage
        try:  # the server sent none: count the exact prompt text with the offline counter
            from agentkit.deepseek.tokens import count_text

            usage = Usage(prompt=count_text(prompt), completion=count_text(text), cost_usd=None)
        except Exception:  # noqa: BLE001 - an estimate must never fail a call
            return Usage(cost_usd=None)
        try:
            from agentkit.models.catalog import lookup

            info = lookup(model)
            usage.cost_usd = info.cost(usage.prompt, usage.completion, usage.cached) if info else None
        except Exception:  # noqa: BLE001
            usage.cost_usd = None
        return usage

    def _completion(self, parsed: ParsedCompletion, finish: str | None, usage: Usage, model: str | None,
                    latency: float, cid: str | None) -> Completion:
        content: str | None = parsed.content
        if parsed.tool_calls and not (content or "").strip():
            content = None
        msg = AssistantMessage(content=content, reasoning=parsed.reasoning, tool_calls=parsed.tool_calls)
        if parsed.tool_calls and finish in (None, "stop"):
            finish = "tool_calls"
        return Completion(message=msg, usage=usage, finish_reason=finish, model=model or self.name,
                          provider=self.provider, latency_s=latency, id=cid, warnings=list(parsed.errors))

    # ------------------------------------------------------------------ complete
    async def complete(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       settings: ModelSettings | None = None, *, on_event: OnEvent | None = None) -> Completion:
        """Render the conversation to the DeepSeek prompt, call ``/v1/completions`` and parse the completion
        into a message with tool calls.
        """
        s = self.settings.merged(settings)
        prompt, in_reasoning = self.render(messages, tools, s)
        body = self.build_body(prompt, s, stream=False)
        return await self._retrying(lambda: self._complete_once(body, s, prompt, in_reasoning), on_event,
                                    s.request_timeout)

    async def _complete_once(self, body: dict[str, Any], s: ModelSettings, prompt: str,
                             in_reasoning: bool) -> Completion:
        t0 = time.monotonic()
        try:
            resp = await self._post("/completions", body, s)
        except TRANSPORT_ERRORS as e:
            raise self._transport_error(e) from e
        data = self._read_body(resp)
        choices = data["choices"]
        text = choices[0].get("text") or ""
        parsed = parse_completion(text, self.version, thinking=in_reasoning)
        model = data.get("model") or self.name
        return self._completion(parsed, choices[0].get("finish_reason"), self._usage(data.get("usage"), prompt, text,
                                                                                     model),
                                model, time.monotonic() - t0, data.get("id"))

    # ------------------------------------------------------------------ stream
    def stream(self, messages: list[Message], tools: list[dict[str, Any]] | None = None,
               settings: ModelSettings | None = None, *,
               on_event: OnEvent | None = None) -> AsyncIterator[CompletionDelta]:
        """As ``complete``, streamed: deltas as the completion is parsed, then the whole ``Completion``."""
        return self._stream(messages, tools, settings, on_event)

    async def _stream(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                      settings: ModelSettings | None, on_event: OnEvent | None) -> AsyncIterator[CompletionDelta]:
        s = self.settings.merged(settings)
        prompt, in_reasoning = self.render(messages, tools, s)
        body = self.build_body(prompt, s, stream=True)
        async for delta in self._retrying_stream(lambda: self._stream_once(body, s, prompt, in_reasoning),
                                                 on_event, s.request_timeout):
            yield delta

    async def _stream_once(self, body: dict[str, Any], s: ModelSettings, prompt: str,
                           in_reasoning: bool) -> AsyncIterator[CompletionDelta]:
        t0 = time.monotonic()
        parser = StreamParser(self.version, thinking=in_reasoning)
        finish: str | None = None
        raw_usage: Any = None
        model: str | None = None
        cid: str | None = None
        done = False

        def partial() -> Completion:
            parsed = parse_completion(parser.text, self.version, thinking=in_reasoning)
            return self._completion(parsed, "error", Usage(cost_usd=None), model, time.monotonic() - t0, cid)

        try:
            async with self._open_stream("/completions", body, s) as resp:
                if resp.status_code >= 400:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    raise self._http_error(resp, text)
                async for chunk in self._sse_json(resp.aiter_lines(), partial):
                    if chunk is None:
                        done = True
                        break
                    model = chunk.get("model") or model
                    cid = chunk.get("id") or cid
                    raw_usage = chunk.get("usage") or raw_usage
                    if chunk.get("error") is not None:
                        raise stream_error(chunk["error"], model=self.name, provider=self.provider,
                                           context_window=self.context_window, partial=partial())
                    for choice in chunk.get("choices") or []:
                        if not isinstance(choice, dict):
                            continue
                        finish = choice.get("finish_reason") or finish
                        piece = choice.get("text") or ""
                        if piece:
                            d = parser.feed(piece)
                            if d:
                                yield CompletionDelta(
                                    content=d.content or None, reasoning=d.reasoning or None,
                                    tool_calls=[ToolCallDelta(index=c.index, id=c.id, name=c.name,
                                                              arguments=c.arguments) for c in d.tool_calls])
        except TRANSPORT_ERRORS as e:
            raise self._transport_error(e, partial()) from e
        if not done and finish is None:
            raise ModelError(f"{self.provider} ({self.name}) stream ended before the reply was finished",
                             retryable=True, partial=partial())
        last = parser.finish()
        if last.content or last.reasoning or last.tool_calls:
            yield CompletionDelta(content=last.content or None, reasoning=last.reasoning or None,
                                  tool_calls=[ToolCallDelta(index=c.index, id=c.id, name=c.name,
                                                            arguments=c.arguments) for c in last.tool_calls])
        assert last.completion is not None
        answered = model or self.name
        yield CompletionDelta(completion=self._completion(
            last.completion, finish, self._usage(raw_usage, prompt, parser.text, answered), answered,
            time.monotonic() - t0, cid))

    # ------------------------------------------------------------------ sync facade