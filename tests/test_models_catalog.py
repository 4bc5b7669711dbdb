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


# -- issue 13, part 5: the catalog matches the seed model pages --------------------------------------

@pytest.mark.parametrize("model,window,p_in,p_out", [
    ("deepseek/deepseek-chat-v3.1:free", 64_000, 0.0, 0.0),
    ("deepseek/deepseek-v3.1-terminus", 163_840, 0.27, 0.95),
    ("deepseek/deepseek-chat-v3-0324", 64_000, 0.27, 1.10),
    ("deepseek/deepseek-r1:free", 163_840, 0.0, 0.0),
    ("deepseek-ai/DeepSeek-V3.1", 128_000, None, None),
])
def test_catalog_matches_the_seed_pages(model, window, p_in, p_out):
    from agentkit.models.catalog import lookup

    info = lookup(model)
    assert info.context_window == window
    if p_in is not None:
        assert (info.input_per_m, info.output_per_m) == (p_in, p_out)


def test_v3_0324_per_provider_entries_and_pinned_runs():
    from agentkit.models.catalog import lookup

    info = lookup("deepseek/deepseek-chat-v3-0324")
    figures = sorted((e.context_window, e.max_output, e.input_per_m, e.output_per_m) for e in info.endpoints)
    assert figures == sorted([(64_000, 8_000, 0.27, 1.10), (163_840, 163_840, 0.40, 0.89),
                              (128_000, 16_000, 0.40, 1.30), (128_000, 33_000, 0.75, 1.50),
                              (8_000, 8_000, 1.00, 1.50), (163_840, 163_840, 1.15, 1.20),
                              (163_840, 163_840, 1.25, 1.25), (64_000, 64_000, 1.25, 1.25)])
    cheapest = min(info.endpoints, key=lambda e: (e.input_per_m, e.output_per_m))
    assert (info.context_window, info.max_output, info.input_per_m) == (cheapest.context_window, cheapest.max_output,
                                                                       cheapest.input_per_m)
    pinned = info.routed({"order": ["US fp8 (1)"]})
    assert (pinned.context_window, pinned.input_per_m, pinned.output_per_m) == (163_840, 0.40, 0.89)
    assert info.routed(None) is info and info.routed({"only": ["nobody"]}) is info


def test_agent_budget_uses_the_pinned_providers_window(fake_server):
    from agentkit.agent import Agent
    from agentkit.models import ModelSettings, OpenAICompatible

    m = OpenAICompatible("deepseek/deepseek-chat-v3-0324", base_url="http://127.0.0.1:9/v1", api_key="k",
                         provider="openrouter", settings=ModelSettings(provider={"only": ["US fp8 (1)"]}))
    assert Agent(m, [])._new_budget().window == 163_840
    plain = OpenAICompatible("deepseek/deepseek-chat-v3-0324", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert Agent(plain, [])._new_budget().window == 64_000


def test_provider_reported_cost_is_the_cost():
    from agentkit.messages import Usage
    from agentkit.models.catalog import cost_from_usage

    usage = Usage(prompt=1_000_000, completion=0)
    assert cost_from_usage("deepseek/deepseek-v3.1-terminus", {"cost": 0.5}, usage) == 0.5
    assert cost_from_usage("deepseek/deepseek-v3.1-terminus", {}, usage) == pytest.approx(0.27)


OR_MODELS = [
    {"id": "deepseek/deepseek-v3.1-terminus", "context_length": 131_072,
     "pricing": {"prompt": "0.0000003", "completion": "0.000001", "input_cache_read": "0.00000003"},
     "top_provider": {"context_length": 131_072, "max_completion_tokens": 65_536},
     "supported_parameters": ["tools", "reasoning"]},
    {"id": "acme/new-model", "context_length": 32_000, "pricing": {"prompt": "0.000001", "completion": "0.000002"},
     "top_provider": {"max_completion_tokens": None}, "supported_parameters": ["temperature"]},
    {"id": "openrouter/auto", "context_length": 2_000_000, "pricing": {"prompt": "-1", "completion": "-1"}},
]


def test_models_refresh_reads_the_list_into_a_cache_that_overrides(fake_server, tmp_path, monkeypatch, capsys):
    from agentkit.cli import main
    from agentkit.models.catalog import all_models, cache_path, lookup
    from agentkit.testing.server import FakeServer

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    srv = FakeServer().start_in_thread()
    srv.models = OR_MODELS
    try:
        assert main(["models", "--refresh", "--api-base", srv.base_url]) == 0
    finally:
        srv.stop()
    assert srv.requests[0]["path"].endswith("/models")
    assert cache_path() == tmp_path / "cache" / "agentkit" / "openrouter-models.json" and cache_path().is_file()
    assert "2 models" in capsys.readouterr().out
    t = lookup("deepseek/deepseek-v3.1-terminus")
    assert (t.context_window, t.max_output, t.input_per_m, t.output_per_m, t.cache_hit_per_m) == \
        (131_072, 65_536, 0.3, 1.0, 0.03)
    assert t.family == "deepseek-v3.1-terminus" and t.source == "openrouter cache"
    new = lookup("acme/new-model")
    assert (new.context_window, new.max_output, new.input_per_m, new.tools) == (32_000, 32_000, 1.0, False)
    assert lookup("openrouter/auto") is None  # no fixed price
    assert "acme/new-model" in [m.id for m in all_models()]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    assert lookup("deepseek/deepseek-v3.1-terminus").input_per_m == 0.27  # the built-in table again


def test_max_cost_with_an_unknown_price_refuses_to_start(monkeypatch):
    from agentkit.app.runner import RunOptions, build_model
    from agentkit.errors import ConfigError
    from agentkit.models import catalog

    monkeypatch.setattr(catalog, "_USER_PRICES", {})
    with pytest.raises(ConfigError, match=r"prices=\(IN, OUT\).*drop Limits\(max_cost_usd=...\)"):
        build_model(RunOptions(model="acme/unpriced", base_url="http://127.0.0.1:9/v1", max_cost=1.0))
    build_model(RunOptions(model="acme/unpriced", base_url="http://127.0.0.1:9/v1"))  # no cap: fine
    model = build_model(RunOptions(model="acme/unpriced", base_url="http://127.0.0.1:9/v1", max_cost=1.0,
                                   price=(1.0, 2.0)))
    info = catalog.lookup(model.name)
    assert (info.input_per_m, info.output_per_m) == (1.0, 2.0)
    assert info.cost(1_000_000, 1_000_000) == 3.0


def test_price_flag_parses(capsys):
    from agentkit.cli import build_parser

    args = build_parser().parse_args(["code", "--price", "0.27,1.10", "--max-cost", "1", "task"])
    assert args.price == (0.27, 1.10)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["code", "--price", "0.27", "task"])
    assert "IN,OUT" in capsys.readouterr().err
