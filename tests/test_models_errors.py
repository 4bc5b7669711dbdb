"""Faults: what is retried (and how long the client waits), what raises which typed error,
what a broken stream leaves behind, and how Fallback moves on."""

from __future__ import annotations

import pytest

from agentkit.errors import (AuthError, BadRequest, ContextWindowExceeded, ModelError, PaymentRequired,
                             RateLimited)
from agentkit.messages import UserMessage
from agentkit.models import Fallback, ModelEvent, ModelSettings, OpenAICompatible, make_model
from agentkit.models.retry import Backoff, parse_retry_after
from agentkit.testing.server import Chaos, Fault, Reply

MSGS = [UserMessage(content="hi")]


class Sleeps:
    """Records the waits the client asks for, without waiting (so no test depends on timing)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(srv, sleeps: Sleeps | None = None, **kw) -> OpenAICompatible:
    kw.setdefault("max_retries", 4)
    return OpenAICompatible(kw.pop("name", "deepseek/deepseek-chat-v3.1"), base_url=srv.base_url,
                            provider=kw.pop("provider", "openai-compatible"), sleep=sleeps or Sleeps(), **kw)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried_and_reported(fake_server, status):
    srv = await fake_server([Fault(status=status), Fault(status=status), Reply("finally")])
    sleeps, events = Sleeps(), []
    m = client(srv, sleeps)
    comp = await m.complete(MSGS, on_event=events.append)
    await m.aclose()
    assert comp.message.content == "finally"
    assert len(srv.requests) == 3
    assert [(e.kind, e.attempt, e.status) for e in events] == [("retry", 1, status), ("retry", 2, status)]
    assert all(isinstance(e, ModelEvent) and e.model == "deepseek/deepseek-chat-v3.1" for e in events)
    assert [e.wait_s for e in events] == sleeps.waits and all(w > 0 for w in sleeps.waits)


async def test_retry_after_is_honoured(fake_server):
    srv = await fake_server([Fault(status=429, headers={"Retry-After": "7"}),
                             Fault(status=503, headers={"Retry-After": "2.5"}),
                             Fault(status=429, headers={"retry-after-ms": "1500"}), Reply("ok")])
    sleeps = Sleeps()
    m = client(srv, sleeps)
    assert (await m.complete(MSGS)).message.content == "ok"
    await m.aclose()
    assert sleeps.waits == [7.0, 2.5, 1.5]


def test_retry_after_forms_and_backoff_growth():
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a past date: go now
    assert parse_retry_after({}, {"error": {"availability": {"retry_after": 12}}}) == 12.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    import random

    b = Backoff(base_s=1.0, max_s=8.0, rng=random.Random(0))
    delays = [b.delay(i) for i in range(6)]
    caps = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, caps))
    assert len(set(delays)) == len(delays)  # jittered


async def test_retry_after_beyond_the_cap_gives_up_at_once(fake_server):
    srv = await fake_server([Fault(status=429, headers={"Retry-After": "3600"}), Reply("never")])
    sleeps = Sleeps()
    m = client(srv, sleeps, backoff=Backoff(max_retry_wait_s=60))
    with pytest.raises(RateLimited) as info:
        await m.complete(MSGS)
    await m.aclose()
    assert info.value.retry_after == 3600 and sleeps.waits == [] and "3600" in str(info.value)


async def test_retries_run_out(fake_server):
    srv = await fake_server([Fault(status=429)] * 3 + [Fault(status=502)] * 3)
    m = client(srv, max_retries=2)
    with pytest.raises(RateLimited) as rl:
        await m.complete(MSGS)
    with pytest.raises(ModelError) as err:
        await m.complete(MSGS)
    await m.aclose()
    assert "after 3 attempts" in str(rl.value) and rl.value.status == 429
    assert err.value.status == 502 and err.value.retryable and "502" in str(err.value)
    assert len(srv.requests) == 6


async def test_connection_faults_are_retried(fake_server):
    srv = await fake_server([Fault(kind="reset_before"), Fault(kind="reset_during", after_chars=5),
                             Fault(kind="malformed_chunk"), Fault(kind="stall", stall_s=5), Reply("survived")])
    events: list[ModelEvent] = []
    m = client(srv, timeout_s=0.5)
    comp = await m.complete(MSGS, on_event=events.append)
    await m.aclose()
    assert comp.message.content == "survived"
    assert len(events) == 4
    assert "timed out" in events[3].error and "malformed" in events[2].error
    assert srv.injected == {"reset_before": 1, "reset_during": 1, "malformed_chunk": 1, "stall": 1}


async def test_slow_reply_times_out_and_is_retried(fake_server):
    srv = await fake_server([Reply("too slow", delay_s=5), Reply("fast enough")])
    events: list[ModelEvent] = []
    m = client(srv, timeout_s=0.3)
    assert (await m.complete(MSGS, on_event=events.append)).message.content == "fast enough"
    await m.aclose()
    assert len(events) == 1 and "timed out waiting for data" in events[0].error


@pytest.mark.parametrize("stream", [False, True])
async def test_keepalive_forever_hits_the_request_deadline_and_is_retried(fake_server, stream):
    """A 200 followed by keep-alives only, forever: each byte resets the read timeout, so only the
    whole-call deadline (``request_timeout``) ends the wait; the call is then retried like any
    transient fault, and the next attempt's answer comes through."""
    import math
    import time

    srv = await fake_server([Fault(kind="keepalive_only", stall_s=math.inf), Reply("real answer", chunk_chars=3)])
    events: list[ModelEvent] = []
    m = client(srv, timeout_s=5, settings=ModelSettings(request_timeout=0.5))
    t0 = time.monotonic()
    if stream:
        deltas = [d async for d in m.stream(MSGS, on_event=events.append)]
        text = deltas[-1].completion.message.content
    else:
        text = (await m.complete(MSGS, on_event=events.append)).message.content
    await m.aclose()
    assert text == "real answer" and len(srv.requests) == 2
    assert 0.5 <= time.monotonic() - t0 < 4  # gave up after the deadline, long before the read timeout
    assert [e.kind for e in events] == ["retry"] and "did not finish within 0.5s" in events[0].error
    assert not events[0].discarded  # keep-alives are not output


async def test_request_timeout_per_call_and_default(fake_server):
    """The deadline is a setting: the default is 300 s, a call's settings override the model's."""
    from agentkit.models.base import DEFAULT_REQUEST_TIMEOUT_S

    assert ModelSettings().request_timeout == DEFAULT_REQUEST_TIMEOUT_S == 300.0
    srv = await fake_server([Reply("slow", delay_s=0.6), Reply("slow again", delay_s=0.6)])
    m = client(srv, max_retries=0, settings=ModelSettings(request_timeout=0.2))
    with pytest.raises(ModelError, match=r"within 0.2s"):
        await m.complete(MSGS)
    assert (await m.complete(MSGS, settings=ModelSettings(request_timeout=5))).message.content == "slow again"
    await m.aclose()


async def test_stream_that_breaks_after_output_is_retried_and_says_discard(fake_server):
    """Output already shown does not stop a retry: the retry event says ``discarded`` and the
    next attempt streams the whole reply again."""
    srv = await fake_server([Fault(kind="reset_before"),
                             Fault(kind="reset_during", after_chars=6, reply=Reply("partial reply", chunk_chars=3)),
                             Fault(kind="error_chunk", error_code=502, after_chars=4,
                                   reply=Reply("partial reply", chunk_chars=3)),
                             Reply("clean stream", chunk_chars=4)])
    events: list[ModelEvent] = []
    seen: list[tuple[str, str]] = []
    final = None
    m = client(srv)
    async for d in m.stream(MSGS, on_event=lambda e: (events.append(e), seen.append(("retry", "")))):
        if d.content:
            seen.append(("text", d.content))
        final = d.completion or final
    await m.aclose()
    assert final is not None and final.message.content == "clean stream"
    assert [(e.kind, e.discarded) for e in events] == [("retry", False), ("retry", True), ("retry", True)]
    assert "502" in events[2].error
    # what a display keeps: the text after the last discarding retry is the reply, once
    last = max(i for i, (k, _) in enumerate(seen) if k == "retry")
    assert "".join(t for _, t in seen[last + 1:]) == "clean stream"
    assert "".join(t for _, t in seen[:last]).startswith("partia")


async def test_stream_out_of_retries_after_output_keeps_the_partial(fake_server):
    srv = await fake_server([Fault(kind="reset_during", after_chars=6,
                                   reply=Reply("partial reply", chunk_chars=3))] * 2)
    m = client(srv, max_retries=1)
    with pytest.raises(ModelError) as info:
        async for _ in m.stream(MSGS):
            pass
    await m.aclose()
    assert len(srv.requests) == 2 and "after 2 attempts" in str(info.value)
    assert info.value.retryable and info.value.partial.message.content == "partia"
    assert info.value.partial.finish_reason == "error"


@pytest.mark.parametrize("code", [500, "server_error"])
async def test_mid_stream_error_chunk_keeps_partial_output(fake_server, code):
    srv = await fake_server([Fault(kind="error_chunk", error_code=code, after_chars=8,
                                   reply=Reply("0123456789", reasoning="hmm", chunk_chars=4))])
    m = client(srv, max_retries=0)
    got = []
    with pytest.raises(ModelError) as info:
        async for d in m.stream(MSGS):
            got.append(d)
    await m.aclose()
    partial = info.value.partial
    assert partial.message.reasoning == "hmm" and partial.message.content == "01234567"
    assert partial.finish_reason == "error" and partial.provider == "FakeProvider"
    assert "injected mid-stream error" in str(info.value)
    assert info.value.retryable


async def test_error_chunk_before_output_is_retried_by_complete_via_stream(fake_server):
    srv = await fake_server([Fault(kind="error_chunk", error_code=502, after_chars=3,
                                   reply=Reply("abcdef", chunk_chars=3)), Reply("whole answer")])
    events: list[ModelEvent] = []
    m = client(srv, stream_complete=True)
    comp = await m.complete(MSGS, on_event=events.append)
    await m.aclose()
    assert comp.message.content == "whole answer" and events[0].status == 502


async def test_error_in_a_200_body(fake_server):
    srv = await fake_server([Fault(kind="error_chunk", error_code=429), Reply("after")])
    events: list[ModelEvent] = []
    m = client(srv)
    assert (await m.complete(MSGS, on_event=events.append)).message.content == "after"
    await m.aclose()
    assert events[0].status == 429


async def test_typed_errors_are_not_retried(fake_server, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    srv = await fake_server([
        Fault(status=401, body={"error": {"code": 401, "message": "No auth credentials found"}}),
        Fault(status=402, body={"error": {"code": 402, "message": "Insufficient credits",
                                          "metadata": {"limit_source": "openrouter_credits"}}}),
        Fault(status=403, body={"error": {"code": 403, "message": "flagged by moderation"}}),
        Fault(status=404, body={"error": {"code": 404, "message": "No endpoints found for foo/bar"}}),
        Fault(status=422, body={"error": {"code": 422, "message": "temperature must be <= 2"}}),
        Fault(status=400, body={"error": {"code": 400, "message": "This endpoint's maximum context length is "
                                          "163840 tokens. However, you requested about 200000 tokens",
                                          "metadata": {"error_type": "context_length_exceeded"}}}),
        Fault(status=400, body="plain bad request"),
    ])
    m = OpenAICompatible("deepseek/deepseek-chat-v3.1", base_url=srv.base_url, provider="openrouter",
                         sleep=Sleeps())
    errors = []
    for _ in range(7):
        with pytest.raises(ModelError) as info:
            await m.complete(MSGS)
        errors.append(info.value)
    await m.aclose()
    assert len(srv.requests) == 7  # nothing retried
    auth, pay, forbidden, missing, invalid, ctx, bad = errors
    assert type(auth) is AuthError and "OPENROUTER_API_KEY" in str(auth) and auth.status == 401
    assert type(pay) is PaymentRequired and "credits" in str(pay)
    assert type(forbidden) is AuthError and "OPENROUTER_API_KEY" in str(forbidden)
    assert type(missing) is BadRequest and "model id" in str(missing) and missing.status == 404
    assert type(invalid) is BadRequest and "temperature must be <= 2" in str(invalid)
    assert type(ctx) is ContextWindowExceeded and "163,840-token" in str(ctx)
    assert type(bad) is BadRequest and "plain bad request" in str(bad)
    for e in errors:
        assert "\n" not in str(e) and not e.retryable
        assert "sk-or-test" not in str(e)


async def test_context_error_names_the_window_from_the_catalog(fake_server):
    srv = await fake_server([Fault(status=400, body={"error": {"message": "Prompt is too long"}})])
    m = OpenAICompatible("deepseek-chat", base_url=srv.base_url, provider="deepseek", api_key="k")
    with pytest.raises(ContextWindowExceeded) as info:
        await m.complete(MSGS)
    await m.aclose()
    assert "131,072-token" in str(info.value)


async def test_unavailable_non_retryable_5xx_is_not_retried(fake_server):
    body = {"error": {"code": 503, "message": "model deprecated",
                      "availability": {"code": "model_deprecated", "retryable": False}}}
    srv = await fake_server([Fault(status=503, body=body), Reply("x")])
    m = client(srv)
    with pytest.raises(ModelError) as info:
        await m.complete(MSGS)
    await m.aclose()
    assert not info.value.retryable and len(srv.requests) == 1


async def test_fallback_moves_on_and_records_it(fake_server):
    bad = await fake_server([Fault(status=503)] * 3)
    good = await fake_server([Reply("from backup"), Reply("streamed backup")])
    events: list[ModelEvent] = []
    m1 = OpenAICompatible("primary", base_url=bad.base_url, max_retries=2, sleep=Sleeps())
    m2 = OpenAICompatible("backup", base_url=good.base_url, sleep=Sleeps())
    fb = Fallback([m1, m2])
    comp = await fb.complete(MSGS, on_event=events.append)
    assert comp.message.content == "from backup" and comp.model == "backup"
    assert [e.kind for e in events] == ["retry", "retry", "fallback"]
    assert events[-1].model == "primary" and events[-1].to_model == "backup" and events[-1].status == 503
    bad.script.extend([Fault(kind="reset_before")] * 3)
    deltas = [d async for d in fb.stream(MSGS)]
    assert deltas[-1].completion.message.content == "streamed backup"
    await fb.aclose()


async def test_fallback_does_not_hide_a_malformed_request(fake_server):
    a = await fake_server([Fault(status=400, body={"error": {"message": "messages: field required"}})])
    b = await fake_server([Reply("unused")])
    fb = Fallback([OpenAICompatible("a", base_url=a.base_url), OpenAICompatible("b", base_url=b.base_url)])
    with pytest.raises(BadRequest):
        await fb.complete(MSGS)
    await fb.aclose()
    assert b.requests == []


async def test_fallback_on_credits_and_via_make_model(fake_server):
    a = await fake_server([Fault(status=402)])
    b = await fake_server([Reply("second provider")])
    m = make_model("m-a", base_url=a.base_url, fallbacks=[])
    assert isinstance(m, OpenAICompatible)
    fb = Fallback([m, make_model("m-b", base_url=b.base_url)])
    events: list[ModelEvent] = []
    assert (await fb.complete(MSGS, on_event=events.append)).message.content == "second provider"
    assert events[0].kind == "fallback" and events[0].status == 402
    await fb.aclose()


async def test_chaos_run_completes_every_request(fake_server):
    """Under a mix of random faults, every call still ends with the scripted answer."""
    answers = [Reply(f"answer {i}", chunk_chars=3) for i in range(12)]
    srv = await fake_server(list(answers), chaos=Chaos(seed=11, rate_429=0.15, rate_429_retry_after=1, rate_5xx=0.15,
                                                       rate_reset_before=0.1, rate_reset_during=0.1,
                                                       rate_malformed=0.1, rate_error_chunk=0.1,
                                                       keepalive_comments=True))
    m = client(srv, max_retries=30, stream_complete=True)
    got = [(await m.complete(MSGS)).message.content for _ in range(6)]
    m.stream_complete = False
    got += [(await m.complete(MSGS)).message.content for _ in range(6)]
    await m.aclose()
    assert got == [f"answer {i}" for i in range(12)]
    assert sum(srv.injected.values()) > 0


async def test_stream_falls_back_after_output_and_says_discard(fake_server):
    """A stream whose model gives up after showing output moves on to the next model too; the
    fallback event says ``discarded`` and the backup's reply is the whole answer."""
    bad = await fake_server([Fault(kind="reset_during", after_chars=4, reply=Reply("doomed reply", chunk_chars=2))])
    good = await fake_server([Reply("backup reply", chunk_chars=4)])
    events: list[ModelEvent] = []
    fb = Fallback([OpenAICompatible("primary", base_url=bad.base_url, max_retries=0, sleep=Sleeps()),
                   OpenAICompatible("backup", base_url=good.base_url, sleep=Sleeps())])
    texts: list[str] = []
    async for d in fb.stream(MSGS, on_event=events.append):
        if d.content:
            texts.append(d.content)
        final = d.completion or None
    await fb.aclose()
    assert final is not None and final.message.content == "backup reply" and final.model == "backup"
    assert [(e.kind, e.discarded) for e in events] == [("fallback", True)]
    assert "".join(texts).endswith("backup reply") and "".join(texts).startswith("doom")
