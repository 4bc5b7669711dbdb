"""RawDeepSeek end to end against the local fake server acting as a ``/v1/completions`` endpoint:
the prompt on the wire is exactly our renderer's, completions are parsed back, streaming, the
search-agent format across tool calls, retries and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentkit.errors import BadRequest
from agentkit.deepseek.special import BOS
from agentkit.deepseek.render import (
    SearchAgentFormat,
    render_prompt,
    render_tools_block,
)
from agentkit.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
from agentkit.models.base import ModelEvent, ModelSettings
from agentkit.models.raw_deepseek import RawDeepSeek
from agentkit.models.retry import Backoff
from agentkit.testing.server import Fault, Reply

B, E = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CB, CE, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
TOOLS = [{"type": "function", "function": {
    "name": "bash", "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]
SEARCH_TOOLS = [{"type": "function", "function": {
    "name": "search", "description": "Search the web.",
    "parameters": {"type": "object", "properties": {"questions": {"type": "string"}}, "required": ["questions"]}}}]
CALL_TEXT = f'Let me look.{B}{CB}bash{SEP}{{"command": "ls -la"}}{CE}{E}'
MSGS = [SystemMessage(content="You are a coding agent."), UserMessage(content="List the files, ünïcode ok?")]


def model_for(srv: Any, **kw: Any) -> RawDeepSeek:
    return RawDeepSeek("deepseek-ai/DeepSeek-V3.1", srv.base_url, backoff=Backoff(base_s=0.01, max_s=0.02), **kw)


async def collect(model: RawDeepSeek, msgs: list[Any], tools: Any = None, **kw: Any):
    deltas = [d async for d in model.stream(msgs, tools, **kw)]
    assert deltas[-1].completion is not None and all(d.completion is None for d in deltas[:-1])
    return deltas[:-1], deltas[-1].completion


async def test_prompt_on_the_wire_is_the_rendered_template(fake_server) -> None:
    srv = await fake_server([Reply(text=CALL_TEXT)])
    model = model_for(srv)
    try:
        comp = await model.complete(MSGS, TOOLS, ModelSettings(max_tokens=100, temperature=0.2, top_k=5))
    finally:
        await model.aclose()
    body = srv.requests[0]["json"]
    assert srv.requests[0]["path"].endswith("/v1/completions")
    # one BOS: the server adds it when it tokenizes, so the rendered prompt goes without its own
    assert BOS + body["prompt"] == render_prompt(MSGS, TOOLS)
    assert body["prompt"].startswith("You are a coding agent.\n\n" + render_tools_block(TOOLS))
    assert body["prompt"].endswith("<｜User｜>List the files, ünïcode ok?<｜Assistant｜></think>")
    assert "<｜end▁of▁sentence｜>" in body["stop"]
    assert (body["max_tokens"], body["temperature"], body["top_k"]) == (100, 0.2, 5)
    assert "messages" not in body and "tools" not in body
    assert comp.message.content == "Let me look."
    assert [(c.name, json.loads(c.arguments)) for c in comp.message.tool_calls] == [("bash", {"command": "ls -la"})]
    assert comp.finish_reason == "tool_calls" and comp.provider == "raw" and comp.warnings == []
    assert comp.usage.prompt > 0 and comp.usage.completion > 0


async def test_streaming_matches_non_streaming(fake_server) -> None:
    srv = await fake_server([Reply(text=CALL_TEXT, chunk_chars=3), Reply(text=CALL_TEXT)])
    model = model_for(srv)
    try:
        deltas, comp = await collect(model, MSGS, TOOLS)
        one_shot = await model.complete(MSGS, TOOLS)
    finally:
        await model.aclose()
    assert srv.requests[0]["json"]["stream"] is True
    assert srv.requests[0]["json"]["prompt"] == srv.requests[1]["json"]["prompt"]
    assert "".join(d.content or "" for d in deltas) == "Let me look."
    args = "".join(c.arguments for d in deltas for c in d.tool_calls)
    assert json.loads(args) == {"command": "ls -la"}
    ids = [c.id for d in deltas for c in d.tool_calls if c.id]
    assert [c.id for c in comp.message.tool_calls] == ids
    assert comp.message.content == one_shot.message.content
    assert [(c.name, c.arguments) for c in comp.message.tool_calls] == \
        [(c.name, c.arguments) for c in one_shot.message.tool_calls]


async def test_thinking_mode_reasoning_is_separated(fake_server) -> None:
    srv = await fake_server([Reply(text="The user wants files. I will answer.</think>Use ls.", chunk_chars=4)])
    model = model_for(srv)
    try:
        deltas, comp = await collect(model, MSGS, None, settings=ModelSettings(thinking=True))
    finally:
        await model.aclose()
    assert srv.requests[0]["json"]["prompt"].endswith("<｜Assistant｜><think>")
    assert "".join(d.reasoning or "" for d in deltas) == "The user wants files. I will answer."
    assert comp.message.reasoning == "The user wants files. I will answer."
    assert comp.message.content == "Use ls." and comp.finish_reason == "stop"


async def test_search_format_keeps_current_turn_reasoning(fake_server) -> None:
    step1 = f'I should search.</think>{B}{CB}search{SEP}{{"questions": "deepseek v3.1||release"}}{CE}{E}'
    step2 = "Results say August 2025.</think>It was released in August 2025 [citation:1]."
    srv = await fake_server([Reply(text=step1), Reply(text=step2, chunk_chars=5)])
    model = model_for(srv, search_format=True)
    msgs: list[Any] = [SystemMessage(content="Answer with citations."), UserMessage(content="When was V3.1 released?")]
    try:
        first = await model.complete(msgs, SEARCH_TOOLS)
        assert first.message.reasoning == "I should search."
        call = first.message.tool_calls[0]
        msgs += [first.message, ToolMessage(tool_call_id=call.id, content="[webpage 1 begin]Aug 2025[webpage 1 end]")]
        deltas, second = await collect(model, msgs, SEARCH_TOOLS)
    finally:
        await model.aclose()
    p1, p2 = (r["json"]["prompt"] for r in srv.requests)
    assert p1.endswith("<｜User｜>When was V3.1 released?<｜Assistant｜><think>")
    assert BOS + p2 == SearchAgentFormat().render(msgs, SEARCH_TOOLS)
    assert p2.startswith(p1)  # the prompt only grows within a turn: the reasoning is kept
    assert p2.endswith("<think>I should search.</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>"
                       '{"questions": "deepseek v3.1||release"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
                       "<｜end▁of▁sentence｜><｜tool▁output▁begin｜>[webpage 1 begin]Aug 2025[webpage 1 end]"
                       "<｜tool▁output▁end｜>")
    assert "".join(d.reasoning or "" for d in deltas) == "Results say August 2025."
    assert second.message.reasoning == "Results say August 2025."
    assert second.message.content == "It was released in August 2025 [citation:1]."
    # the next user turn renders the finished turn like the official template: reasoning dropped
    later = SearchAgentFormat().render(msgs + [second.message, UserMessage(content="Thanks")])
    assert "I should search." not in later and "Results say" not in later
    assert later.endswith("<｜User｜>Thanks<｜Assistant｜><think>")


async def test_thinking_tool_loop_keeps_reasoning_by_default(fake_server) -> None:
    """Without an explicit format, a thinking run's tool loop uses the search-agent format (the official
    template would drop this turn's reasoning); ``search_format=False`` forces the official template."""
    step1 = f'Need ls.</think>{B}{CB}bash{SEP}{{"command": "ls"}}{CE}{E}'
    srv = await fake_server([Reply(text=step1), Reply(text="Saw a.txt.</think>One file."),
                             Reply(text=step1), Reply(text="One file.")])
    results = {}
    for fmt in (None, False):
        model = model_for(srv, search_format=fmt)
        msgs: list[Any] = list(MSGS)
        try:
            first = await model.complete(msgs, TOOLS, ModelSettings(thinking=True))
            msgs += [first.message, ToolMessage(tool_call_id=first.message.tool_calls[0].id, content="a.txt")]
            results[fmt] = await model.complete(msgs, TOOLS, ModelSettings(thinking=True))
        finally:
            await model.aclose()
    auto, official = (r["json"]["prompt"] for r in srv.requests[1::2])
    assert "<think>Need ls.</think>" in auto and BOS + auto == SearchAgentFormat().render(msgs, TOOLS)
    assert "Need ls." not in official and BOS + official == render_prompt(msgs, TOOLS, thinking=True)
    assert results[None].message.reasoning == "Saw a.txt." and results[None].message.content == "One file."


async def test_truncated_call_is_no_call_with_warning(fake_server) -> None:
    text = f"Let me look.{B}{CB}bash{SEP}{{\"command\": \"ls"
    srv = await fake_server([Reply(text=text, finish_reason="length"), Reply(text=text, finish_reason="length")])
    model = model_for(srv)
    try:
        comp = await model.complete(MSGS, TOOLS)
        _, streamed = await collect(model, MSGS, TOOLS)
    finally:
        await model.aclose()
    for c in (comp, streamed):
        assert c.message.tool_calls == [] and c.message.content == text
        assert c.finish_reason == "length" and c.warnings


async def test_retries_then_succeeds_and_reports_events(fake_server) -> None:
    srv = await fake_server([Fault(status=503), Fault(kind="reset_before"), Reply(text="Fine.")])
    model = model_for(srv)
    events: list[ModelEvent] = []
    try:
        comp = await model.complete(MSGS, on_event=events.append)
    finally:
        await model.aclose()
    assert comp.message.content == "Fine."
    assert [e.kind for e in events] == ["retry", "retry"] and events[0].status == 503
    assert len(srv.requests) >= 3


async def test_mid_stream_faults_keep_partial_output(fake_server) -> None:
    """A stream out of retries after output was shown: the error carries what arrived so far, parsed."""
    from agentkit.errors import ModelError

    partial_reply = Reply(text=CALL_TEXT + " and more text to stream", chunk_chars=4)
    srv = await fake_server([Fault(kind="error_chunk", after_chars=20, reply=partial_reply, error_code=502),
                             Fault(kind="reset_during", after_chars=20, reply=partial_reply),
                             Fault(kind="malformed_chunk", after_chars=20, reply=partial_reply)])
    model = model_for(srv, max_retries=0)
    try:
        for expected in ("502", "broke", "malformed"):
            shown: list[str] = []
            with pytest.raises(ModelError, match=expected) as info:
                async for d in model.stream(MSGS, TOOLS):
                    shown.append(d.content or "")
            partial = info.value.partial
            assert partial is not None and partial.message.content.startswith("".join(shown)) and shown
    finally:
        await model.aclose()
    assert len(srv.requests) == 3  # one request per fault


async def test_fault_after_output_is_retried_in_stream(fake_server) -> None:
    """Output already shown does not stop a retry; the event says the shown output is dropped."""
    partial_reply = Reply(text=CALL_TEXT + " and more text to stream", chunk_chars=4)
    srv = await fake_server([Fault(kind="reset_during", after_chars=20, reply=partial_reply),
                             Reply(text="Fine.", chunk_chars=2)])
    model = model_for(srv)
    events: list[ModelEvent] = []
    try:
        deltas = [d async for d in model.stream(MSGS, on_event=events.append)]
    finally:
        await model.aclose()
    assert deltas[-1].completion.message.content == "Fine."
    assert [(e.kind, e.discarded) for e in events] == [("retry", True)]


async def test_keepalive_forever_hits_the_request_deadline(fake_server) -> None:
    import math

    srv = await fake_server([Fault(kind="keepalive_only", stall_s=math.inf), Reply(text="Fine.")])
    model = model_for(srv, settings=ModelSettings(request_timeout=0.3))
    events: list[ModelEvent] = []
    try:
        comp = await model.complete(MSGS, on_event=events.append)
    finally:
        await model.aclose()
    assert comp.message.content == "Fine." and "within 0.3s" in events[0].error


async def test_fault_before_output_is_retried_in_stream(fake_server) -> None:
    srv = await fake_server([Fault(kind="reset_before"), Reply(text="Fine.", chunk_chars=2)])
    model = model_for(srv)
    events: list[ModelEvent] = []
    try:
        deltas = [d async for d in model.stream(MSGS, on_event=events.append)]
    finally:
        await model.aclose()
    assert deltas[-1].completion.message.content == "Fine." and [e.kind for e in events] == ["retry"]


async def test_bad_request_is_not_retried(fake_server) -> None:
    srv = await fake_server([Fault(status=400)])
    model = model_for(srv)
    try:
        with pytest.raises(BadRequest):
            await model.complete(MSGS)
    finally:
        await model.aclose()
    assert len(srv.requests) == 1


async def test_usage_estimated_with_offline_counter_when_server_sends_none(fake_server) -> None:
    tokens = pytest.importorskip("agentkit.deepseek.tokens")
    srv = await fake_server([Reply(text="Hello there.", send_usage=False)])
    model = model_for(srv)
    try:
        comp = await model.complete(MSGS, TOOLS)
    finally:
        await model.aclose()
    assert comp.usage.prompt == tokens.count_text(render_prompt(MSGS, TOOLS))
    assert comp.usage.completion == tokens.count_text("Hello there.")


async def test_history_with_assistant_objects_round_trips(fake_server) -> None:
    """A multi-step code-agent history renders as the official template would."""
    srv = await fake_server([Reply(text="Done.")])
    model = model_for(srv)
    first = AssistantMessage.model_validate({"content": None, "reasoning": "dropped", "tool_calls": [
        {"id": "c1", "name": "bash", "arguments": '{"command": "ls"}'}]})
    msgs = MSGS + [first, ToolMessage(tool_call_id="c1", content="a.txt\nb.txt")]
    try:
        comp = await model.complete(msgs, TOOLS)
    finally:
        await model.aclose()
    prompt = srv.requests[0]["json"]["prompt"]
    assert prompt.endswith("<｜Assistant｜></think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>bash<｜tool▁sep｜>"
                           '{"command": "ls"}<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>'
                           "<｜tool▁output▁begin｜>a.txt\nb.txt<｜tool▁output▁end｜>")
    assert comp.message.content == "Done."


def test_make_model_builds_raw_provider() -> None:
    from agentkit.models import make_model
    from agentkit.models.base import Model

    m = make_model("deepseek-ai/DeepSeek-V3.1", provider="raw", base_url="http://127.0.0.1:9/v1")
    assert isinstance(m, RawDeepSeek) and isinstance(m, Model) and m.base_url == "http://127.0.0.1:9/v1"
    assert RawDeepSeek("x", "http://127.0.0.1:9").base_url == "http://127.0.0.1:9/v1"
    assert "sk-secret" not in repr(RawDeepSeek("x", "http://127.0.0.1:9", api_key="sk-secret"))


# --------------------------------------------------------------------------- a real /v1/completions server


@pytest.fixture
def llama_completions_url(llama_url: str) -> str:
    """llama-cpp-python's server with SmolLM2: not DeepSeek, but a real ``/v1/completions``
    implementation to prove the wire format (stream, stop, usage) end to end."""
    return llama_url


@pytest.mark.llamacpp
async def test_real_completions_server_stream_and_non_stream(llama_completions_url: str) -> None:
    model = RawDeepSeek("SmolLM2-135M-Instruct", llama_completions_url, max_retries=0,
                        settings=ModelSettings(temperature=0, seed=7, max_tokens=24))
    msgs = [UserMessage(content="Say hello.")]
    try:
        one = await model.complete(msgs, TOOLS)
        deltas, streamed = await collect(model, msgs, TOOLS)
        stopped = await model.complete(msgs, TOOLS, ModelSettings(stop=["e"], max_tokens=24))
    finally:
        await model.aclose()
    assert one.finish_reason in ("stop", "length", "tool_calls")
    assert one.usage.prompt > 50  # the server counted our rendered prompt (tools block included)
    text = lambda c: (c.message.reasoning or "") + (c.message.content or "")
    assert text(streamed) == text(one)  # same seed, same text, parsed the same way
    assert "".join((d.content or "") + (d.reasoning or "") for d in deltas) in (text(one), text(one).rstrip())
    assert "e" not in (stopped.message.content or "")  # our extra stop sequence reached the server


@pytest.mark.parametrize("model,template,sent_version", [
    ("deepseek-ai/DeepSeek-V3.1", None, "v3.1"), ("deepseek-ai/DeepSeek-R1", None, "r1"),
    ("deepseek-ai/DeepSeek-V3-0324", None, "v3-0324"), ("deepseek-ai/DeepSeek-V3.1-Terminus", None, "v3.1"),
    ("served", None, "v3.1"), ("served", "r1", "r1"), ("deepseek-ai/DeepSeek-R1", "v3.1", "v3.1"),
])
def test_template_is_chosen_or_inferred_from_the_model(model, template, sent_version):
    m = RawDeepSeek(model, "http://127.0.0.1:9/v1", version=template)
    assert m.version == sent_version


async def test_r1_served_raw_keeps_thinking_on_and_max_tokens_defaults(fake_server):
    srv = await fake_server([Reply(text="<think>\nhm</think>ok")])
    model = RawDeepSeek("deepseek-ai/DeepSeek-R1", srv.base_url)
    try:
        await model.complete([UserMessage(content="hi")])
    finally:
        await model.aclose()
    body = srv.requests[0]["json"]
    assert not body["prompt"].startswith(BOS) and BOS not in body["prompt"]  # exactly one BOS: the server's
    assert body["prompt"].endswith("<｜Assistant｜><think>\n") and "</think>" not in body["prompt"]
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 16


async def test_default_max_tokens_is_the_smaller_of_max_output_and_window_left(fake_server):
    from agentkit.models.catalog import lookup

    srv = await fake_server([Reply(text="ok"), Reply(text="ok")])
    info = lookup("deepseek-ai/DeepSeek-V3.1")
    model = RawDeepSeek("deepseek-ai/DeepSeek-V3.1", srv.base_url)
    try:
        await model.complete([UserMessage(content="hi")])
        big = "word " * 100_000
        await model.complete([UserMessage(content=big)])
    finally:
        await model.aclose()
    first, second = (r["json"]["max_tokens"] for r in srv.requests)
    assert first == min(info.max_output, info.context_window - model_prompt_tokens(srv.requests[0]))
    assert second < first and second == info.context_window - model_prompt_tokens(srv.requests[1])


def model_prompt_tokens(req):
    from agentkit.deepseek.tokens import count_text

    return count_text(BOS + req["json"]["prompt"])
