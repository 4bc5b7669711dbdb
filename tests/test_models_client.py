"""OpenAICompatible against the fake server: bodies sent, replies read, streams assembled."""

from __future__ import annotations

import json

import pytest

from agentkit.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage
from agentkit.models import ModelSettings, OpenAICompatible
from agentkit.testing.server import Chaos, Reply

MSGS = [SystemMessage(content="be brief"), UserMessage(content="hi")]
TOOLS = [{"type": "function", "function": {"name": "bash", "description": "run",
                                            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}]
CALLS = [{"name": "read_file", "arguments": '{"path": "src/app.py", "lines": [1, 40]}', "id": "call_1"},
         {"name": "bash", "arguments": '{"cmd": "pytest -q tests/test_app.py"}', "id": "call_2"},
         {"name": "search", "arguments": '{"questions": "deepseek v3.1 || tool calls"}', "id": "call_3"}]


def model_for(srv, name="test-model", **kw) -> OpenAICompatible:
    return OpenAICompatible(name, base_url=srv.base_url, **kw)


async def test_complete_sends_messages_tools_and_every_setting(fake_server):
    srv = await fake_server([Reply("hello")])
    settings = ModelSettings(max_tokens=55, temperature=0.3, top_p=0.9, top_k=40, min_p=0.05, repetition_penalty=1.1,
                             frequency_penalty=0.2, presence_penalty=0.1, stop=["\n\n"], seed=7,
                             logit_bias={"42": -100}, response_format={"type": "json_object"},
                             structured_outputs=True, tool_choice="auto", parallel_tool_calls=True,
                             reasoning={"effort": "high"}, provider={"order": ["deepinfra"]},
                             models=["deepseek/deepseek-r1"], user="u1", extra_body={"custom": {"a": 1}},
                             app_url="https://example.org", app_title="agentkit tests")
    m = model_for(srv, api_key="sk-secret")
    try:
        comp = await m.complete(MSGS, TOOLS, settings)
    finally:
        await m.aclose()
    assert comp.message.content == "hello" and comp.finish_reason == "stop"
    body = srv.requests[0]["json"]
    assert body["model"] == "test-model"
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert body["tools"] == TOOLS
    expected = settings.model_dump(exclude={"extra_body", "thinking", "timeout_s", "request_timeout", "app_url",
                                            "app_title"}, exclude_none=True)
    for key, value in expected.items():
        assert body[key] == value, key
    assert body["custom"] == {"a": 1}
    assert "stream" not in body and "app_url" not in body and "timeout_s" not in body
    assert "request_timeout" not in body  # a client-side deadline, never sent
    headers = srv.requests[0]["headers"]
    assert headers["authorization"] == "Bearer sk-secret"
    assert "http-referer" not in headers  # attribution headers are OpenRouter's only


async def test_extra_body_deep_merges_into_provider_fields(fake_server):
    srv = await fake_server([Reply("ok")])
    m = OpenAICompatible("m", base_url=srv.base_url, provider="vllm",
                         settings=ModelSettings(thinking=True, extra_body={"chat_template_kwargs": {"x": 1}}))
    await m.complete(MSGS)
    await m.aclose()
    assert srv.requests[0]["json"]["chat_template_kwargs"] == {"thinking": True, "x": 1}


async def test_complete_reads_tool_calls_reasoning_and_usage(fake_server):
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 12}}
    srv = await fake_server([Reply(None, reasoning="let me check", tool_calls=CALLS, usage=usage)])
    m = model_for(srv, name="deepseek/deepseek-chat-v3.1")
    comp = await m.complete(MSGS, TOOLS)
    await m.aclose()
    assert comp.message.content is None
    assert [(c.id, c.name, c.arguments) for c in comp.message.tool_calls] == \
        [(c["id"], c["name"], c["arguments"]) for c in CALLS]
    assert comp.message.reasoning == "let me check" and comp.message.reasoning_key == "reasoning_content"
    assert comp.finish_reason == "tool_calls"
    assert (comp.usage.prompt, comp.usage.completion, comp.usage.reasoning) == (120, 30, 12)
    assert comp.usage.cost_usd == pytest.approx((120 * 0.20 + 30 * 0.80) / 1e6)
    assert comp.model == "deepseek/deepseek-chat-v3.1" and comp.id and comp.id.startswith("chatcmpl-")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "reasoning_details"])
async def test_stream_assembles_interleaved_tool_calls_and_reasoning(fake_server, field):
    srv = await fake_server([Reply("I'll look.", reasoning="step one; step two", reasoning_field=field,
                                   tool_calls=CALLS, chunk_chars=3)])
    m = model_for(srv)
    deltas = [d async for d in m.stream(MSGS, TOOLS)]
    await m.aclose()
    final = deltas[-1].completion
    assert final is not None and all(d.completion is None for d in deltas[:-1])
    assert "".join(d.content or "" for d in deltas) == "I'll look." == final.message.content
    assert "".join(d.reasoning or "" for d in deltas) == "step one; step two" == final.message.reasoning
    assert [(c.id, c.name, c.arguments) for c in final.message.tool_calls] == \
        [(c["id"], c["name"], c["arguments"]) for c in CALLS]
    for c in final.message.tool_calls:
        json.loads(c.arguments)
    pieces = [tc for d in deltas for tc in d.tool_calls]
    assert [p.index for p in pieces[:3]] == [0, 1, 2]  # interleaved on the wire, reassembled by index
    assert final.finish_reason == "tool_calls"
    assert final.usage.completion > 0
    if field == "reasoning_details":
        assert final.message.reasoning_details == [{"type": "reasoning.text", "text": "step one; step two",
                                                    "signature": None, "format": "unknown", "index": 0}]
        assert "reasoning_content" not in final.message.to_openai()
    else:
        assert final.message.reasoning_key == field
        assert final.message.to_openai()[field] == "step one; step two"
    body = srv.requests[0]["json"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "reasoning_details"])
async def test_non_stream_reasoning_fields(fake_server, field):
    srv = await fake_server([Reply("answer", reasoning="why", reasoning_field=field)])
    m = model_for(srv)
    comp = await m.complete(MSGS)
    await m.aclose()
    assert comp.message.reasoning == "why" and comp.message.content == "answer"


async def test_stream_skips_keepalive_comments_and_reads_separate_usage_chunk(fake_server):
    srv = await fake_server([Reply("alive and well", chunk_chars=2, usage_in_separate_chunk=True,
                                   usage={"prompt_tokens": 9, "completion_tokens": 4})],
                            chaos=Chaos(keepalive_comments=True))
    m = model_for(srv)
    deltas = [d async for d in m.stream(MSGS)]
    await m.aclose()
    final = deltas[-1].completion
    assert final.message.content == "alive and well"
    assert (final.usage.prompt, final.usage.completion) == (9, 4)
    assert final.usage.cost_usd is None  # unknown model: cost unknown, not an error


def test_stream_complete_mode_and_sync_facade(fake_server_thread):
    srv = fake_server_thread([Reply("via stream", chunk_chars=4), Reply("sync")])
    m = OpenAICompatible("m", base_url=srv.base_url, stream_complete=True)
    comp = m.complete_sync(MSGS)
    assert comp.message.content == "via stream" and srv.requests[0]["json"]["stream"] is True
    m2 = OpenAICompatible("m", base_url=srv.base_url)
    assert m2.complete_sync(MSGS).message.content == "sync"


async def test_history_with_tool_turns_round_trips_to_the_wire(fake_server):
    srv = await fake_server([Reply("done")])
    history = [UserMessage(content="run it"),
               AssistantMessage(content=None, reasoning="think", reasoning_key="reasoning_content",
                                tool_calls=[ToolCall(id="c9", name="bash", arguments='{"cmd":"ls"}')]),
               ToolMessage(tool_call_id="c9", content="a\nb")]
    m = model_for(srv)
    await m.complete(history, TOOLS)
    await m.aclose()
    sent = srv.requests[0]["json"]["messages"]
    assert sent[1] == {"role": "assistant", "content": None, "reasoning_content": "think",
                       "tool_calls": [{"id": "c9", "type": "function",
                                       "function": {"name": "bash", "arguments": '{"cmd":"ls"}'}}]}
    assert sent[2] == {"role": "tool", "tool_call_id": "c9", "content": "a\nb"}


async def test_missing_usage_is_estimated_with_the_tokenizer(fake_server):
    """A server that reports no usage still gives token counts (and a catalog cost)."""
    srv = await fake_server([Reply("four score and seven years ago", send_usage=False),
                             Reply("streamed without usage", send_usage=False)])
    m = model_for(srv, name="deepseek-chat")
    comp = await m.complete(MSGS)
    deltas = [d async for d in m.stream(MSGS)]
    await m.aclose()
    assert "usage" not in json.dumps(srv.requests[0]["json"])
    from agentkit.deepseek.tokens import count_text, count_tokens

    assert comp.usage.prompt == count_tokens(MSGS, None, "deepseek-chat")
    assert comp.usage.completion == count_text("four score and seven years ago")
    assert comp.usage.cost_usd and comp.usage.cost_usd > 0
    final = deltas[-1].completion
    assert final.usage.completion == count_text("streamed without usage") and final.usage.prompt == comp.usage.prompt


async def test_leaked_tool_markup_goes_to_the_repairer(fake_server):
    leaked = "Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>bash<｜tool▁sep｜>{\"cmd\": \"ls\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
    srv = await fake_server([Reply(leaked)])
    m = model_for(srv)
    comp = await m.complete(MSGS, TOOLS)
    await m.aclose()
    assert [c.name for c in comp.message.tool_calls] == ["bash"]
    assert json.loads(comp.message.tool_calls[0].arguments) == {"cmd": "ls"}
    assert "<｜" not in (comp.message.content or "")


def test_repr_and_errors_never_show_the_key():
    m = OpenAICompatible("m", base_url="http://127.0.0.1:9/v1", api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(m)
