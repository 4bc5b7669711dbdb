"""A readable Markdown transcript of a run (for reports, issues, PR descriptions).

Reasoning and long tool outputs go into ``<details>`` blocks, which GitHub and most viewers fold.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from agentkit.messages import content_text
from agentkit.render.trajectories import load, usage_of

LONG_OUTPUT_CHARS = 2000


def _fence(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip(chr(10))}\n{ticks}"


def pretty_json(arguments: str) -> tuple[str, bool]:
    """Arguments pretty-printed when they are JSON (else as they are); second item: valid JSON."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False), True
    except (ValueError, TypeError):
        return arguments, False


def _num(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _cost(c: Any) -> str:
    return f"${c:.4f}" if isinstance(c, (int, float)) else "n/a"


def _stats(r: dict[str, Any]) -> str:
    parts = []
    u = r.get("usage") or {}
    if u:
        parts.append(f"{_num(u.get('prompt', 0))} → {_num(u.get('completion', 0))} tokens")
    if isinstance(r.get("latency_s"), (int, float)):
        parts.append(f"{r['latency_s']:.2f} s")
    if r.get("cost_usd") is not None:
        parts.append(_cost(r["cost_usd"]))
    return f" ({', '.join(parts)})" if parts else ""


def render_markdown(path: str | os.PathLike[str]) -> str:
    traj = load(path)
    run = traj.run
    usage = usage_of(traj)
    task = (traj.task or "").strip()
    out = [f"# {task.splitlines()[0][:120] if task else 'agentkit run'}", "",
           "| | |", "|---|---|",
           f"| Model | `{run.get('model')}` ({run.get('provider')}) |",
           f"| Preset | {run.get('preset') or '-'} |",
           f"| Status | **{traj.status}** |",
           f"| Steps | {traj.steps} |",
           f"| Tokens | {_num(usage.prompt)} prompt ({_num(usage.cached)} cached), {_num(usage.completion)} completion "
           f"({_num(usage.reasoning)} reasoning) |",
           f"| Cost | {_cost(usage.cost_usd)} |", ""]
    for r in traj.records:
        kind = r.get("type")
        if kind == "message":
            out += _message(r)
        elif kind == "tool_result":
            out += _tool(r)
        elif kind == "event":
            fields = {k: v for k, v in r.items() if k not in ("v", "t", "type", "kind", "step", "messages",
                                                                 "summary_message", "sources")}
            out += [f"> _{r.get('kind')}_ " + ", ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, "")),
                    ""]
        elif kind == "end":
            if r.get("answer"):
                out += ["## Answer", "", str(r["answer"]), ""]
            if r.get("error"):
                out += [f"**Error:** {r['error']}", ""]
    if traj.sources:
        out += ["## Sources", ""]
        out += [f"{s.get('n')}. [{s.get('title') or s.get('url')}]({s.get('url')})" for s in traj.sources]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _message(r: dict[str, Any]) -> list[str]:
    m = r.get("message") or {}
    role = m.get("role", "?")
    text = content_text(m.get("content"))
    if role == "tool":  # a tool message logged as a plain message record
        return _tool({"name": m.get("name"), "tool_call_id": m.get("tool_call_id"), "observation": {"text": text}})
    if role in ("system", "user"):
        title = "System" if role == "system" else ("Note from the agent" if r.get("origin") == "agent" else "User")
        return [f"## {title}", "", _fence(text) if role == "system" else text, ""]
    out = [f"## Step {r.get('step')} · assistant{_stats(r)}", ""]
    reasoning = m.get("reasoning_content") or m.get("reasoning")
    if reasoning:
        out += ["<details><summary>Reasoning</summary>", "", _fence(str(reasoning)), "", "</details>", ""]
    if text.strip():
        out += [text, ""]
    for call in m.get("tool_calls") or []:
        fn = call.get("function") or {}
        args, _ = pretty_json(str(fn.get("arguments", "")))
        out += [f"**Tool call** `{fn.get('name')}` (`{call.get('id')}`)", "", _fence(args, "json"), ""]
    return out


def _tool(r: dict[str, Any]) -> list[str]:
    obs = r.get("observation") or {}
    text = str(obs.get("text") if obs.get("text") is not None else content_text((r.get("message") or {}).get("content")))
    flag = " — **error**" if obs.get("is_error") else ""
    dur = f" ({r['duration_s']:.2f} s)" if isinstance(r.get("duration_s"), (int, float)) else ""
    out = [f"### Result of `{r.get('name')}`{dur}{flag}", ""]
    if len(text) > LONG_OUTPUT_CHARS:
        out += [f"<details><summary>{len(text.splitlines())} lines, {len(text):,} characters</summary>", "",
                _fence(text, "text"), "", "</details>", ""]
    else:
        out += [_fence(text, "text"), ""]
    return out
