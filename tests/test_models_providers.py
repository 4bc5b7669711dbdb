"""Provider presets: each one's thinking field in the real request body, keys, headers and quirks;
and the ``make_model`` factory."""

from __future__ import annotations

import asyncio

import pytest

from agentkit.errors import ConfigError
from agentkit.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage
from agentkit.models import Fallback, ModelSettings, OpenAICompatible, make_model
from agentkit.models.providers import PROVIDERS, infer_provider, is_local_url, resolve_api_key
from agentkit.testing.server import Reply

MSGS = [UserMessage(content="hi")]
THINK_FIELDS = ("reasoning", "thinking", "chat_template_kwargs")


async def sent_body(fake_server, provider: str, model: str, thinking: bool | None, **settings):
    srv = await fake_server([Reply("ok")])
    m = OpenAICompatible(model, base_url=srv.base_url, provider=provider, api_key="k",
                         settings=ModelSettings(thinking=thinking, **settings))
    await m.complete(MSGS)
    await m.aclose()
    return srv.requests[0]["json"], srv.requests[0]["headers"]


@pytest.mark.parametrize("thinking", [True, False])
@pytest.mark.parametrize("provider,model,expected", [
    ("openrouter", "deepseek/deepseek-chat-v3.1", lambda t: {"reasoning": {"enabled": t}}),
    ("atlascloud", "deepseek-ai/DeepSeek-V3.1", lambda t: {"thinking": {"type": "enabled" if t else "disabled"}}),
    ("vllm", "deepseek-ai/DeepSeek-V3.1", lambda t: {"chat_template_kwargs": {"thinking": t}}),
    ("sglang", "deepseek-ai/DeepSeek-V3.1", lambda t: {"chat_template_kwargs": {"thinking": t}}),
])
async def test_thinking_switch_maps_to_each_providers_field(fake_server, provider, model, expected, thinking):
    body, _ = await sent_body(fake_server, provider, model, thinking)
    want = expected(thinking)
    for key in THINK_FIELDS:
        assert body.get(key) == want.get(key), key
    assert body["model"] == model


@pytest.mark.parametrize("model,thinking,sent", [
    ("deepseek-chat", True, "deepseek-reasoner"), ("deepseek-chat", False, "deepseek-chat"),
    ("deepseek-reasoner", False, "deepseek-chat"), ("deepseek-reasoner", True, "deepseek-reasoner"),
    ("deepseek-chat", None, "deepseek-chat"),
])
async def test_deepseek_thinking_is_the_model_name(fake_server, model, thinking, sent):
    body, _ = await sent_body(fake_server, "deepseek", model, thinking)
    assert body["model"] == sent
    assert not any(k in body for k in THINK_FIELDS)


async def test_unset_thinking_sends_nothing(fake_server):
    for provider in ("openrouter", "atlascloud", "vllm"):
        body, _ = await sent_body(fake_server, provider, "m", None)
        assert not any(k in body for k in THINK_FIELDS)


async def test_openrouter_reasoning_object_and_attribution_headers(fake_server):
    body, headers = await sent_body(fake_server, "openrouter", "deepseek/deepseek-chat-v3.1", True,
                                    reasoning={"effort": "high", "exclude": True},
                                    app_url="https://github.com/example/agentkit", app_title="agentkit")
    assert body["reasoning"] == {"effort": "high", "exclude": True, "enabled": True}
    assert headers["http-referer"] == "https://github.com/example/agentkit"
    assert headers["x-title"] == "agentkit"
    assert "app_url" not in body and "app_title" not in body


HISTORY = [UserMessage(content="go"),
           AssistantMessage(content=None, reasoning="plan", reasoning_key="reasoning_content",
                            tool_calls=[ToolCall(id="c1", name="bash", arguments="{}")]),
           ToolMessage(tool_call_id="c1", content="out"),
           AssistantMessage(content="done", reasoning="summary", reasoning_key="reasoning_content"),
           UserMessage(content="again")]


async def test_llamacpp_gets_empty_string_for_null_content_and_only_it(fake_server):
    for provider, expected in (("llamacpp", ""), ("vllm", None), ("openai-compatible", None)):
        srv = await fake_server([Reply("ok")])
        m = OpenAICompatible("m", base_url=srv.base_url, provider=provider)
        await m.complete(HISTORY)
        await m.aclose()
        assert srv.requests[0]["json"]["messages"][1]["content"] == expected, provider


async def test_deepseek_echoes_reasoning_only_on_tool_call_turns_of_newer_models(fake_server):
    srv = await fake_server([Reply("ok")])
    m = OpenAICompatible("deepseek-v4-flash", base_url=srv.base_url, provider="deepseek", api_key="k")
    await m.complete(HISTORY)
    await m.aclose()
    sent = srv.requests[0]["json"]["messages"]
    assert sent[1]["reasoning_content"] == "plan"
    assert "reasoning_content" not in sent[3]


@pytest.mark.parametrize("model,thinking", [("deepseek-chat", True), ("deepseek-reasoner", None),
                                            ("deepseek-chat", False)])
async def test_deepseek_v31_era_aliases_never_get_reasoning_back(fake_server, model, thinking):
    # the V3.1-era deepseek-reasoner answered 400 to reasoning_content in messages
    srv = await fake_server([Reply("ok")])
    m = OpenAICompatible(model, base_url=srv.base_url, provider="deepseek", api_key="k",
                         settings=ModelSettings(thinking=thinking))
    await m.complete(HISTORY)
    await m.aclose()
    assert not any("reasoning_content" in d for d in srv.requests[0]["json"]["messages"])


@pytest.mark.parametrize("thinking", [True, False])
@pytest.mark.parametrize("model", ["deepseek-v4-flash", "deepseek-v3.2", "some-new-model"])
async def test_deepseek_other_models_get_thinking_type(fake_server, model, thinking):
    body, _ = await sent_body(fake_server, "deepseek", model, thinking)
    assert body["model"] == model
    assert body["thinking"] == {"type": "enabled" if thinking else "disabled"}
    assert "reasoning" not in body and "chat_template_kwargs" not in body


@pytest.mark.parametrize("provider,expected", [
    ("openrouter", "deepseek/deepseek-chat-v3.1"), ("deepseek", "deepseek-chat"),
    ("atlascloud", "deepseek-ai/DeepSeek-V3.1")])
async def test_default_model_per_provider_is_sent(fake_server, provider, expected):
    srv = await fake_server([Reply("ok")])
    m = make_model(None, provider=provider, base_url=srv.base_url, api_key="k")
    assert m.name == expected
    await m.complete(MSGS)
    await m.aclose()
    assert srv.requests[-1]["json"]["model"] == expected


async def test_deepseek_default_with_thinking_is_the_reasoner(fake_server):
    m = make_model(None, provider="deepseek", api_key="k", settings=ModelSettings(thinking=True))
    assert m.name == "deepseek-reasoner"
    await m.aclose()


@pytest.mark.parametrize("provider", ["vllm", "sglang", "llamacpp", "openai-compatible", "raw", None])
async def test_self_hosted_default_is_the_first_listed_model(fake_server, provider):
    srv = await fake_server([Reply("ok", text="ok")])
    srv.models = ["served/first", "served/second"]
    m = await asyncio.to_thread(make_model, None, provider=provider, base_url=srv.base_url)
    assert m.name == "served/first"
    await m.aclose()
    srv.models = []
    with pytest.raises(ConfigError, match=r"model=NAME"):
        await asyncio.to_thread(make_model, None, provider=provider, base_url=srv.base_url)


def test_chat_cli_with_provider_deepseek_sends_deepseek_chat(monkeypatch, capsys):
    from agentkit.cli import main
    from agentkit.testing.server import FakeServer

    srv = FakeServer([Reply("hello")]).start_in_thread()
    try:
        monkeypatch.setenv("DEEPSEEK_API_KEY", "k")
        assert main(["chat", "--provider", "deepseek", "--base-url", srv.base_url, "--no-stream", "hi"]) == 0
    finally:
        srv.stop()
    assert srv.requests[0]["json"]["model"] == "deepseek-chat"
    assert "hello" in capsys.readouterr().out


def test_missing_keys_name_the_variable(monkeypatch):
    for var in ("OPENROUTER_API_KEY", "DEEPSEEK_API_KEY", "ATLASCLOUD_API_KEY", "AGENTKIT_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for provider, var in (("openrouter", "OPENROUTER_API_KEY"), ("deepseek", "DEEPSEEK_API_KEY"),
                          ("atlascloud", "ATLASCLOUD_API_KEY")):
        with pytest.raises(ConfigError) as info:
            OpenAICompatible("m", provider=provider)
        assert var in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        OpenAICompatible("m", provider="openai-compatible", base_url="https://api.example.com/v1")
    assert "AGENTKIT_API_KEY" in str(info.value)
    with pytest.raises(ConfigError) as info:
        OpenAICompatible("m", provider="openai-compatible")
    assert "base_url=URL" in str(info.value)
    # Local servers need no key, whatever the preset.
    for provider in PROVIDERS:
        assert OpenAICompatible("m", provider=provider, base_url="http://127.0.0.1:8000/v1")._api_key is None
    assert OpenAICompatible("m", provider="vllm")._api_key is None
    with pytest.raises(ConfigError):
        OpenAICompatible("m", provider="nope")


def test_key_resolution_order():
    p = PROVIDERS["openrouter"]
    url = "https://openrouter.ai/api/v1"
    assert resolve_api_key(p, url, "explicit", env={"OPENROUTER_API_KEY": "env"}) == "explicit"
    assert resolve_api_key(p, url, None, env={"OPENROUTER_API_KEY": "env", "AGENTKIT_API_KEY": "g"}) == "env"
    assert resolve_api_key(p, url, None, env={"AGENTKIT_API_KEY": "g"}) == "g"


async def test_key_from_the_environment_is_sent(fake_server, monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-ds-env")
    srv = await fake_server([Reply("ok")])
    m = OpenAICompatible("deepseek-chat", base_url=srv.base_url, provider="deepseek")
    await m.complete(MSGS)
    await m.aclose()
    assert srv.requests[0]["headers"]["authorization"] == "Bearer sk-ds-env"


def test_local_urls_and_provider_inference():
    assert is_local_url("http://127.0.0.1:8000/v1") and is_local_url("http://localhost/v1")
    assert is_local_url("http://[::1]:9/v1") and is_local_url("http://10.0.0.5:8000/v1")
    assert not is_local_url("https://openrouter.ai/api/v1")
    assert infer_provider("x", "https://openrouter.ai/api/v1") == "openrouter"
    assert infer_provider("x", "https://api.deepseek.com") == "deepseek"
    assert infer_provider("x", "https://api.atlascloud.ai/v1") == "atlascloud"
    assert infer_provider("x", "http://127.0.0.1:8000/v1") == "openai-compatible"
    assert infer_provider("deepseek-chat") == "deepseek"
    assert infer_provider("deepseek-ai/DeepSeek-V3.1") == "atlascloud"
    assert infer_provider("deepseek/deepseek-chat-v3.1") == "openrouter"


def test_make_model_variants(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or")
    m = make_model("deepseek/deepseek-chat-v3.1")
    assert isinstance(m, OpenAICompatible) and m.provider == "openrouter"
    assert m.base_url == "https://openrouter.ai/api/v1"
    local = make_model("served", base_url="http://127.0.0.1:8000/v1", provider="vllm",
                       settings=ModelSettings(thinking=True))
    assert local.provider == "vllm" and local.settings.thinking is True
    fb = make_model("served", base_url="http://127.0.0.1:8000/v1", fallbacks=["other", "openrouter:deepseek/deepseek-r1:free"])
    assert isinstance(fb, Fallback)
    assert [(x.name, x.provider) for x in fb.models] == [("served", "openai-compatible"), ("other", "openai-compatible"),
                                                        ("deepseek/deepseek-r1:free", "openrouter")]
    script = tmp_path / "turns.jsonl"
    script.write_text('{"content": "hello from replay"}\n')
    replay = make_model(f"replay:{script}")
    assert replay.provider == "replay"
    assert make_model("").name == "deepseek/deepseek-chat-v3.1"  # no model: OpenRouter's default
    with pytest.raises(ConfigError):
        make_model("m", provider="raw")  # needs a base URL


async def test_make_model_raw_provider_uses_the_completions_endpoint(fake_server):
    srv = await fake_server([Reply(text="plain answer")])
    m = make_model("deepseek-ai/DeepSeek-V3.1", provider="raw", base_url=srv.base_url)
    comp = await m.complete(MSGS)
    await m.aclose()
    assert srv.requests[0]["path"] == "/v1/completions"
    assert "plain answer" in (comp.message.content or "")


@pytest.mark.parametrize("provider,model,thinking,sent", [
    ("deepseek", "deepseek-chat", True, {"model": "deepseek-reasoner"}),
    ("deepseek", "deepseek-v4-flash", False, {"thinking": {"type": "disabled"}}),
    ("openrouter", "deepseek/deepseek-chat-v3.1", True, {"reasoning": {"enabled": True}}),
    ("vllm", "served", True, {"chat_template_kwargs": {"thinking": True}}),
])
async def test_trajectory_header_records_the_thinking_fields_sent(fake_server, tmp_path, provider, model, thinking,
                                                                   sent):
    import json

    from agentkit.agent import Agent

    srv = await fake_server([Reply("done")])
    m = OpenAICompatible(model, base_url=srv.base_url, provider=provider, api_key="k")
    path = tmp_path / "t.jsonl"
    await Agent(m, [], trajectory=path, thinking=thinking, require_submit=False).run("hi")
    await m.aclose()
    header = json.loads(path.read_text().splitlines()[0])
    assert header["thinking_sent"] == sent
    body = srv.requests[0]["json"]
    assert all(body[k] == v for k, v in sent.items())


def test_readme_provider_table_matches_the_code():
    import re
    from pathlib import Path

    from agentkit.models.raw_deepseek import TEMPLATES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and "default model" not in cells[2]:
            for name in re.findall(r"`([a-z-]+)`", cells[0]):
                rows[name] = cells
    assert set(rows) == {*PROVIDERS, "raw"}
    style_text = {"openrouter": "reasoning: {enabled}", "thinking_type": "thinking: {type}",
                  "chat_template_kwargs": "chat_template_kwargs: {thinking}", "model_name": "model name"}
    for name, p in PROVIDERS.items():
        _, key, default, thinking, _raw = rows[name]
        assert f"`{p.key_env}`" in key, name
        if p.default_model:
            assert default.startswith(f"`{p.default_model}`"), name
            if p.thinking_model:
                assert f"thinking: `{p.thinking_model}`" in default
        else:
            assert "GET {base_url}/models" in default, name
        assert style_text[p.thinking_style] in thinking, name
        for rule in p.model_rules:
            assert f"`{rule.match}`" in thinking and style_text[rule.thinking_style] in thinking
    assert all(f"`{t}`" in rows["raw"][4] for t in TEMPLATES)
