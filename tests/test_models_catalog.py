"""The catalog: every model the issue lists, sane numbers, and cost (provider-reported first,
then catalog prices with cache hits, unknown model = unknown cost)."""

from __future__ import annotations

import pytest

from agentkit.messages import UserMessage
from agentkit.models import OpenAICompatible, catalog
from agentkit.testing.server import Reply

LISTED = ["deepseek/deepseek-chat-v3.1", "deepseek/deepseek-chat-v3.1:free", "deepseek/deepseek-v3.1-terminus",
          "deepseek/deepseek-r1", "deepseek/deepseek-r1:free", "deepseek/deepseek-chat-v3-0324",
          "deepseek-ai/DeepSeek-V3.1", "deepseek-chat", "deepseek-reasoner"]


@pytest.mark.parametrize("model_id", LISTED)
def test_every_listed_model_is_known(model_id):
    info = catalog.lookup(model_id)
    assert info is not None and info.id == model_id
    assert 64_000 <= info.context_window <= 200_000 and 0 < info.max_output <= info.context_window
    assert info.input_per_m >= 0 and info.output_per_m >= 0 and info.prices_as_of
    if model_id.endswith(":free"):
        assert info.input_per_m == info.output_per_m == 0


def test_lookup_is_forgiving_but_not_guessing():
    assert catalog.lookup("DeepSeek-Chat").id == "deepseek-chat"
    assert catalog.lookup("openrouter/deepseek/deepseek-r1").id == "deepseek/deepseek-r1"
    assert catalog.lookup("my-finetune") is None and catalog.lookup(None) is None and catalog.lookup("") is None


def test_cost_with_cache_hits():
    ds = catalog.lookup("deepseek-chat")
    assert ds.cache_hit_per_m is not None and ds.cache_hit_per_m < ds.input_per_m
    # 1M prompt tokens, 800k of them cached, 100k out.
    expected = (200_000 * ds.input_per_m + 800_000 * ds.cache_hit_per_m + 100_000 * ds.output_per_m) / 1e6
    assert ds.cost(1_000_000, 100_000, cached=800_000) == pytest.approx(expected)
    assert ds.cost(1000, 0, cached=5000) == pytest.approx(1000 * ds.cache_hit_per_m / 1e6)  # cached <= prompt
    orr = catalog.lookup("deepseek/deepseek-chat-v3.1")
    assert orr.cache_hit_per_m is None
    assert orr.cost(1000, 10, cached=900) == pytest.approx((1000 * orr.input_per_m + 10 * orr.output_per_m) / 1e6)


async def test_cost_from_the_wire(fake_server):
    srv = await fake_server([
        Reply("a", usage={"prompt_tokens": 10_000, "completion_tokens": 500, "prompt_cache_hit_tokens": 8_000,
                          "prompt_cache_miss_tokens": 2_000}),
        Reply("b", usage={"prompt_tokens": 10_000, "completion_tokens": 500, "cost": 0.0042,
                          "prompt_tokens_details": {"cached_tokens": 8_000}}),
    ])
    m = OpenAICompatible("deepseek-chat", base_url=srv.base_url, provider="deepseek", api_key="k")
    a = await m.complete([UserMessage(content="x")])
    b = await m.complete([UserMessage(content="x")])
    await m.aclose()
    ds = catalog.lookup("deepseek-chat")
    assert a.usage.cached == 8_000
    assert a.usage.cost_usd == pytest.approx((2_000 * 0.56 + 8_000 * 0.07 + 500 * 1.68) / 1e6)
    assert a.usage.cost_usd == pytest.approx(ds.cost(10_000, 500, 8_000))
    assert b.usage.cost_usd == 0.0042 and b.usage.cached == 8_000  # the provider's own figure wins


async def test_unknown_model_cost_is_none_and_sums_stay_none(fake_server):
    srv = await fake_server([Reply("a"), Reply("b")])
    m = OpenAICompatible("local-finetune", base_url=srv.base_url)
    a = await m.complete([UserMessage(content="x")])
    b = await m.complete([UserMessage(content="x")])
    await m.aclose()
    assert a.usage.cost_usd is None and a.usage.prompt > 0
    assert (a.usage + b.usage).cost_usd is None
