"""The client against a server nobody here wrote: llama-cpp-python's OpenAI-compatible server
serving SmolLM2-135M-Instruct (installed by scripts/install-llamacpp). One server per module."""

from __future__ import annotations

import json

import pytest

from agentkit.errors import ModelError
from agentkit.messages import ToolMessage, UserMessage
from agentkit.models import ModelSettings, OpenAICompatible

pytestmark = pytest.mark.llamacpp

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
FORCE = {"type": "function", "function": {"name": "get_weather"}}
ASK = [UserMessage(content="What is the weather in Paris?")]


def client(url: str, provider: str = "llamacpp", **settings) -> OpenAICompatible:
    return OpenAICompatible("SmolLM2-135M-Instruct", base_url=url, provider=provider, max_retries=0,
                            settings=ModelSettings(**{"temperature": 0, "seed": 7, "max_tokens": 40, **settings}))


async def test_chat_and_usage(llama_url):
    m = client(llama_url)
    comp = await m.complete([UserMessage(content="Say hello in one short sentence.")])
    await m.aclose()
    assert isinstance(comp.message.content, str) and comp.message.content.strip()
    assert comp.finish_reason in ("stop", "length")
    assert comp.usage.prompt > 0 and comp.usage.completion > 0
    assert comp.usage.cost_usd is None  # not in the catalog: unknown, not a crash


async def test_streaming(llama_url):
    m = client(llama_url)
    deltas = [d async for d in m.stream([UserMessage(content="Count from one to five.")])]
    await m.aclose()
    final = deltas[-1].completion
    assert final is not None and len(deltas) > 3
    assert "".join(d.content or "" for d in deltas) == final.message.content and final.message.content.strip()
    assert final.finish_reason in ("stop", "length")
    assert final.usage.completion > 0  # reported, or estimated with the tokenizer when the server sends none


async def test_forced_named_tool_choice(llama_url):
    m = client(llama_url, tool_choice=FORCE, max_tokens=60)
    comp = await m.complete(ASK, TOOLS)
    deltas = [d async for d in m.stream(ASK, TOOLS)]
    await m.aclose()
    for c in (comp, deltas[-1].completion):
        assert c.finish_reason == "tool_calls"
        assert [t.name for t in c.message.tool_calls] == ["get_weather"]
        assert isinstance(json.loads(c.message.tool_calls[0].arguments)["city"], str)
        assert "function_call" not in c.message.extra  # the server's deprecated duplicate is not kept


async def test_tool_result_turn_replayed_back(llama_url):
    m = client(llama_url, tool_choice=FORCE, max_tokens=60)
    call = await m.complete(ASK, TOOLS)
    history = [*ASK, call.message, ToolMessage(tool_call_id=call.message.tool_calls[0].id, content="Sunny, 21 C")]
    assert call.message.content is None
    answer = await client(llama_url).complete(history, TOOLS)
    assert isinstance(answer.message.content, str) and answer.finish_reason in ("stop", "length")
    # The quirk is real: the same history with content null, as every other provider gets it, fails there.
    generic = client(llama_url, provider="openai-compatible")
    with pytest.raises(ModelError) as info:
        await generic.complete(history, TOOLS)
    await generic.aclose()
    await m.aclose()
    assert info.value.status == 500 and "\n" not in str(info.value)


async def test_call_cut_off_by_max_tokens(llama_url):
    m = client(llama_url, tool_choice=FORCE, max_tokens=4)
    comp = await m.complete(ASK, TOOLS)
    await m.aclose()
    assert comp.finish_reason == "tool_calls"  # what the server says, although the call was cut off
    call = comp.message.tool_calls[0]
    assert call.name == "get_weather"
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.arguments)
