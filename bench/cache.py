"""Benchmark 6: what context management costs with DeepSeek's prompt cache.

DeepSeek's API bills the prompt tokens that repeat the start of the previous request at the
cache-hit price ($0.07 per million for ``deepseek-chat``, against $0.56 for a miss). A scripted
episode drives the real ``Agent`` loop: a ``Replay`` model named ``deepseek-chat`` (so the agent
reserves its 8,192-token output cap) calls one in-process ``read`` tool 60 times, and each
observation is about 2,000 tokens of seeded code-like text ("even"); the "uneven" episode draws
the sizes from a log-normal (100 to 6,000 tokens, about the same total). Every call's prompt (the
messages and tools the model got) is rendered in DeepSeek V3.1 form with agentkit's renderer and
tokenized with its tokenizer; a call's hits are the longest common token prefix with the previous
call's prompt, the rest are misses. Cost = hits × $0.07 + misses × $0.56 + completion × $1.68 per
million (the catalog's ``deepseek-chat`` prices).

Rows, per episode: agentkit's policy (``ContextPolicy()``: compact past the high-water mark, cut
to the low-water mark) at windows 32,000 and 131,072; the one-threshold policy agentkit had before
(start and stop at 80%) at the same windows; and never compacting (what mini-swe-agent does: the
run fails once a prompt and the reply's room no longer fit the window). Targets: at 131,072 cost
within 1.15x of never compacting, at 32,000 at least 75% of prompt tokens cache hits, and the run
ends ``done`` in both. Each agentkit run also checks that its trajectory rebuilds every prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import random
import tempfile
from pathlib import Path
from typing import Any

from bench import table

WINDOWS = (32_000, 131_072)
NEVER_WINDOW = 10**9
REPLY_ROOM = 8_192  # deepseek-chat's output cap: the room the agent keeps for the reply
MODEL = "deepseek-chat"
SYSTEM = "You are a careful software engineer. Use the tools to inspect the build, then answer."
TASK = "The nightly build failed. Read every part of its log with `read` and tell me which test failed first."
_WORDS = ("the value of config parser returns error when file path is missing retry cache token stream "
          "model agent sandbox output request server client timeout index list dict string number").split()
_LINES = ["def {f}(x, y=None):", "    return {f}_impl(x) + {n}", "class {F}(Base):", "    self.{f} = {n}",
          "for i in range({n}):", "    if x[i] > {n}: break", "import {f}", "# {w} {w} {w}", "print({f}(i))",
          "tests/test_{w}.py::test_{f} PASSED [{n}%]", "INFO {w} {f}: {n} ms"]


def sizes(kind: str, steps: int, seed: int = 0) -> list[int]:
    """Tokens of each observation: 2,000 each ("even"), or log-normal sizes ("uneven")."""
    if kind == "even":
        return [2_000] * steps
    rng = random.Random(seed + 1)
    return [min(6_000, max(100, int(rng.lognormvariate(math.log(1_400), 0.9)))) for _ in range(steps)]


def observation(tokens: int, seed: int) -> str:
    """Seeded code-like text of about ``tokens`` tokens."""
    from agentkit.deepseek.tokens import encoding

    rng = random.Random(seed)
    lines = []
    for _ in range(tokens // 6 + 10):
        w = rng.choice(_WORDS)
        lines.append(rng.choice(_LINES).format(f=w + str(rng.randint(0, 99)), F=w.title(),
                                               n=rng.randint(0, 9999), w=w))
    enc = encoding()
    ids = enc.encode_ordinary("\n".join(lines))
    return enc.decode(ids[:tokens])


def script(kind: str, steps: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """The replay turns (``steps`` tool calls, then the answer) and the observations they read."""
    outputs = [f"part {i + 1} of {steps}\n" + observation(n, seed * 1000 + i)
               for i, n in enumerate(sizes(kind, steps, seed))]
    turns = [{"content": f"Reading part {i + 1} of the log.",
              "tool_calls": [{"name": "read", "arguments": json.dumps({"part": i})}]} for i in range(steps)]
    turns.append({"content": "The first failure is tests/test_cache.py::test_hits in part 17."})
    return turns, outputs


# --- hits: the longest common token prefix of two rendered prompts ----------------------------

def pieces(prompt: str) -> list[str]:
    """The prompt cut at its special tokens (each its own piece): the pieces tokenize on their own."""
    from agentkit.deepseek.tokens import _SPECIAL_SHAPES, encoding

    specials = encoding().special_tokens_set
    out, pending = [], 0
    for m in _SPECIAL_SHAPES.finditer(prompt):
        if m.group() in specials:
            if m.start() > pending:
                out.append(prompt[pending:m.start()])
            out.append(m.group())
            pending = m.end()
    if pending < len(prompt):
        out.append(prompt[pending:])
    return out


@functools.lru_cache(maxsize=None)
def _ids(piece: str) -> tuple[int, ...]:
    from agentkit.deepseek.tokens import encoding

    enc = encoding()
    if piece in enc.special_tokens_set:
        return (enc.encode_single_token(piece),)
    return tuple(enc.encode_ordinary(piece))


def tokens_of(ps: list[str]) -> int:
    return sum(len(_ids(p)) for p in ps)


def common_prefix(a: list[str], b: list[str]) -> int:
    """Tokens the two prompts (as ``pieces``) share from their start."""
    n = 0
    for x, y in zip(a, b):
        if x == y:
            n += len(_ids(x))
            continue
        for i, j in zip(_ids(x), _ids(y)):
            if i != j:
                break
            n += 1
        break
    return n


# --- one run ----------------------------------------------------------------------------------

async def _run_agent(turns: list[dict[str, Any]], outputs: list[str], window: int, policy: Any,
                     folder: Path) -> dict[str, Any]:
    from agentkit.agent import Agent, Limits
    from agentkit.errors import AgentkitError
    from agentkit.models.replay import Replay
    from agentkit.tools.base import tool
    from agentkit.trajectory import Trajectory

    @tool
    async def read(part: int) -> str:
        """Read one part of the build log.

        Args:
            part: which part, from 0
        """
        return outputs[part]

    model = Replay(turns, name=MODEL)
    path = folder / f"run-{window}-{id(policy)}.jsonl"
    agent = Agent(model, [read], system=SYSTEM, window=window, context_policy=policy, trajectory=path,
                  limits=Limits(max_steps=len(turns) + 5))
    try:
        result = await agent.run(TASK)
    except AgentkitError as e:  # a failed run raises, with its result on the error
        assert e.result is not None
        result = e.result
    traj = Trajectory.load(path)
    calls = [(c["messages"], c["tools"]) for c in model.calls]
    rebuilt = [m for m, _ in calls] == traj.model_calls()
    compactions = [e for e in traj.events if e.get("kind") == "compaction"]
    return {"status": result.status, "calls": calls, "completion": result.usage.completion,
            "compactions": len(compactions), "rebuilt": rebuilt}


def price(calls: list[tuple[list[Any], Any]], completion: int) -> dict[str, Any]:
    """Prompt tokens, hits (longest common prefix with the previous prompt) and cost of the calls."""
    from agentkit.deepseek.render import render_prompt
    from agentkit.models.catalog import lookup

    info = lookup(MODEL)
    assert info is not None
    prev: list[str] = []
    prompt = hit = 0
    sizes_: list[int] = []
    for messages, tools in calls:
        ps = pieces(render_prompt(messages, tools=tools))
        n, h = tokens_of(ps), common_prefix(prev, ps)
        prompt, hit, prev = prompt + n, hit + h, ps
        sizes_.append(n)
    return {"prompt_tokens": prompt, "hit_tokens": hit, "hit_share": hit / prompt if prompt else 0.0,
            "cost_usd": info.cost(prompt, completion, hit), "max_prompt": max(sizes_, default=0),
            "prompt_sizes": sizes_}


def _row(policy_name: str, window: int | None, run: dict[str, Any], priced: dict[str, Any]) -> dict[str, Any]:
    row = {"policy": policy_name, "window": window, "status": run["status"], "calls": len(run["calls"]),
           "compactions": run["compactions"], "rebuilt": run["rebuilt"]}
    row.update({k: v for k, v in priced.items() if k != "prompt_sizes"})
    return row


def _never(run: dict[str, Any], sizes_: list[int], window: int) -> dict[str, Any]:
    """Never compacting at ``window``: the run fails at the first call whose prompt leaves the
    reply less than ``REPLY_ROOM`` tokens; priced up to that call."""
    over = next((i for i, n in enumerate(sizes_) if n + REPLY_ROOM > window), None)
    if over is None:
        return _row("never compact", window, run | {"compactions": 0}, price(run["calls"], run["completion"]))
    calls = run["calls"][:over]
    share = run["completion"] * over // max(1, len(run["calls"]))
    row = _row("never compact", window, run | {"calls": calls, "status": "error"}, price(calls, share))
    row["error"] = f"context window exceeded at call {over + 1}"
    return row


def run(steps: int = 60, episodes: tuple[str, ...] = ("even", "uneven"), windows: tuple[int, ...] = WINDOWS,
        seed: int = 0) -> dict[str, Any]:
    from agentkit.agent.compactor import ContextPolicy

    policies = {"agentkit": ContextPolicy(),
                "one threshold (before)": ContextPolicy(compact_at=0.8, compact_to=0.8, reserve=0)}
    res: dict[str, Any] = {"steps": steps, "model": MODEL, "episodes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in episodes:
            turns, outputs = script(kind, steps, seed)
            rows = []
            never = asyncio.run(_run_agent(turns, outputs, NEVER_WINDOW, ContextPolicy(), Path(tmp)))
            priced = price(never["calls"], never["completion"])
            rows.append(_row("never compact", None, never, priced))
            for window in windows:
                for name, policy in policies.items():
                    r = asyncio.run(_run_agent(turns, outputs, window, policy, Path(tmp)))
                    rows.append(_row(name, window, r, price(r["calls"], r["completion"])))
                rows.append(_never(never, priced["prompt_sizes"], window))
            res["episodes"][kind] = {"observation_tokens": sum(sizes(kind, steps, seed)), "rows": rows}
    res["targets"] = targets(res)
    return res


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, per episode: cost at 131,072 within 1.15x of never compacting, at least
    75% hits at 32,000, and ``done`` in both."""
    out = []
    for kind, ep in res.get("episodes", {}).items():
        rows = ep["rows"]
        never = next(r for r in rows if r["window"] is None)
        ours = {r["window"]: r for r in rows if r["policy"] == "agentkit"}
        if 131_072 in ours:
            r = ours[131_072]
            ratio = r["cost_usd"] / never["cost_usd"]
            out.append({"episode": kind, "target": "cost at 131,072 ≤ 1.15× never compacting",
                        "value": round(ratio, 3), "met": ratio <= 1.15 and r["status"] == "done"})
        if 32_000 in ours:
            r = ours[32_000]
            out.append({"episode": kind, "target": "hit share at 32,000 ≥ 75%", "value": round(r["hit_share"], 3),
                        "met": r["hit_share"] >= 0.75 and r["status"] == "done"})
    return out


def render(res: dict[str, Any]) -> str:
    parts = []
    for kind, ep in res["episodes"].items():
        rows = [[r["policy"], f"{r['window']:,}" if r["window"] else "unlimited", r["status"], r["calls"],
                 r["compactions"], f"{r['prompt_tokens']:,}", f"{r['max_prompt']:,}", f"{r['hit_share']:.1%}",
                 f"${r['cost_usd']:.3f}", "yes" if r["rebuilt"] else "NO"] for r in ep["rows"]]
        parts.append(f"Episode '{kind}': {res['steps']} steps, {ep['observation_tokens']:,} observation tokens\n\n"
                     + table(["policy", "window", "status", "calls", "compactions", "prompt tokens", "largest prompt",
                              "hit share", "cost", "prompts rebuilt"], rows))
    goals = [f"- {t['episode']}: {t['target']}: {t['value']} ({'met' if t['met'] else 'NOT met'})"
             for t in res.get("targets", [])]
    return "\n\n".join(parts + (["\n".join(goals)] if goals else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench cache", description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--episodes", default="even,uneven", help="comma-separated: even, uneven")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.steps, tuple(a.episodes.split(",")), seed=a.seed)
    print(json.dumps(res, indent=2) if a.json else render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
