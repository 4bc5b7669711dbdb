"""The trajectory viewer: one self-contained HTML page per run (inline CSS/JS, no external assets,
a CSP that forbids loading anything, works offline).

The page is rendered here, not by script, so it opens fast even for long runs: one card per
record with role colours, reasoning and long outputs in native ``<details>`` (folding needs no
script), tool calls as pretty JSON (``str_replace_editor`` edits as diffs), per-step
tokens/latency/cost, totals, the run's outcome (the test result from ``result.json`` and the final
``patch.diff`` next to the trajectory, when present; a link to the batch index when the run is part
of one), the sources table of search runs, and the DeepSeek prompt of the last step with special
tokens highlighted. The small script only adds expand/collapse-all and filters. Every text from the
run is escaped.
"""

from __future__ import annotations

import difflib
import html
import json
import os
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from agentkit.deepseek.render import render_assistant_turn
from agentkit.deepseek.special import HIGHLIGHT_RE, MARKER_RE
from agentkit.messages import content_text
from agentkit.render.markdown import pretty_json
from agentkit.render.trajectories import load, render_deepseek, usage_of

FOLD_CHARS = 1200
FOLD_LINES = 20
PREVIEW_LINES = 3
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
_TOKEN_RE = re.compile(f"{HIGHLIGHT_RE.pattern}|{MARKER_RE.pattern}")
_CITE_RE = re.compile(r"\[citation:(\d+)\]")


@cache
def _asset(name: str) -> str:
    return (files("agentkit.render") / name).read_text(encoding="utf-8")


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def highlight(text: str) -> str:
    """Escaped text with DeepSeek special tokens wrapped in ``<span class="tok">``."""
    out, last = [], 0
    for m in _TOKEN_RE.finditer(text):
        out.append(esc(text[last:m.start()]))
        out.append(f'<span class="tok">{esc(m.group(0))}</span>')
        last = m.end()
    out.append(esc(text[last:]))
    return "".join(out)


def _with_citations(escaped: str, numbers: set[int]) -> str:
    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f'<a class="cite" href="#source-{n}">{m.group(0)}</a>' if n in numbers else m.group(0)

    return _CITE_RE.sub(link, escaped) if numbers else escaped


def _safe_url(url: Any) -> str | None:
    url = str(url or "")
    return url if re.match(r"https?://", url, re.IGNORECASE) else None


def _num(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else esc(n)


def _stats(r: dict[str, Any]) -> str:
    parts = []
    u = r.get("usage") or {}
    if u:
        tok = f"{_num(u.get('prompt', 0))} → {_num(u.get('completion', 0))} tok"
        if u.get("reasoning"):
            tok += f" ({_num(u['reasoning'])} reasoning)"
        if u.get("cached"):
            tok += f" · {_num(u['cached'])} cached" + _share(u["cached"], u.get("prompt"))
        parts.append(tok)
    if isinstance(r.get("latency_s"), (int, float)):
        parts.append(f"{r['latency_s']:.2f} s")
    cost = r.get("cost_usd") if r.get("cost_usd") is not None else (u or {}).get("cost_usd")
    if isinstance(cost, (int, float)):
        parts.append(f"${cost:.4f}")
    return f'<span class="stats">{" · ".join(parts)}</span>' if parts else ""


def _share(part: Any, whole: Any) -> str:
    """`` (NN% hit)``: the share of the prompt served from the provider's cache."""
    ok = isinstance(part, int) and isinstance(whole, int) and whole > 0
    return f" ({part / whole:.0%} hit)" if ok else ""


def _folded(text: str, cls: str) -> str:
    lines = text.splitlines()
    if len(text) <= FOLD_CHARS and len(lines) <= FOLD_LINES:
        return f'<pre class="{cls}">{highlight(text)}</pre>'
    preview = "\n".join(lines[:PREVIEW_LINES])[:300]
    return (f'<details class="{cls} fold"><summary><span class="preview">{esc(preview)}</span> … '
            f"({len(lines):,} lines, {len(text):,} characters)</summary>"
            f'<pre class="{cls}">{highlight(text)}</pre></details>')


def _diff_html(diff: str) -> str:
    """A unified diff, escaped, one span per line coloured by its kind."""
    lines = []
    for line in diff.splitlines():
        cls = ("meta" if line.startswith(("diff --git", "index ", "+++", "---", "new file", "deleted file",
                                           "similarity", "rename ", "old mode", "new mode", "Binary files"))
               else "hunk" if line.startswith("@@") else "add" if line.startswith("+")
               else "del" if line.startswith("-") else "ctx")
        lines.append(f'<span class="d-{cls}">{esc(line)}</span>')
    return f'<pre class="diff">{"".join(lines)}</pre>'  # each line a block of its own


def edit_as_diff(arguments: str) -> str | None:
    """The unified diff a ``str_replace_editor`` call asks for (None for views, undo or bad JSON)."""
    try:
        args = json.loads(arguments)
    except ValueError:
        return None
    if not isinstance(args, dict):
        return None
    path, command = str(args.get("path") or "?"), args.get("command")
    if command == "str_replace":
        old, new = str(args.get("old_str") or ""), str(args.get("new_str") or "")
        before, after = f"a/{path}", f"b/{path}"
    elif command == "create":
        old, new, before, after = "", str(args.get("file_text") or ""), "/dev/null", f"b/{path}"
    elif command == "insert":
        old, new = "", str(args.get("new_str") or "")
        before, after = f"a/{path}", f"b/{path} (after line {args.get('insert_line', '?')})"
    else:
        return None
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), before, after, lineterm="", n=3)
    return "\n".join(lines) or f"--- {before}\n+++ {after}\n(no change)"


def _outcome(result: dict[str, Any] | None, patch: str | None, batch_index: bool) -> str:
    """The run's test result and final patch, above the steps."""
    parts = []
    test = (result or {}).get("test")
    if isinstance(test, dict):
        ok = bool(test.get("passed"))
        verdict = "passed" if ok else ("timed out" if test.get("timed_out") else "FAILED")
        parts.append(f'<div class="test {"pass" if ok else "fail"}"><b>Tests {esc(verdict)}</b> '
                     f'(exit {esc(test.get("exit_code"))}): <code>{esc(test.get("cmd"))}</code></div>')
        if test.get("output"):
            parts.append(f'<details class="test-output"><summary>Test output</summary>'
                         f'<pre class="obs">{esc(test["output"])}</pre></details>')
    if patch is not None:
        files = re.findall(r"^diff --git a/(\S+)", patch, flags=re.M)
        if patch.strip():
            parts.append(f'<details class="patch" open><summary>Final patch · {len(files)} file(s): '
                         f'{esc(", ".join(files[:8]))}{" …" if len(files) > 8 else ""}</summary>'
                         f"{_diff_html(patch)}</details>")
        else:
            parts.append('<div class="patch">Final patch: no changes</div>')
    if batch_index:
        parts.append('<div class="batch"><a href="../../index.html">← the batch index</a></div>')
    return f'<section class="outcome">{"".join(parts)}</section>' if parts else ""


def _read_outcome(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    result = patch = None
    try:
        loaded = json.loads((path.parent / "result.json").read_text(encoding="utf-8"))
        result = loaded if isinstance(loaded, dict) else None
    except (OSError, ValueError):
        pass
    name = ((result or {}).get("files") or {}).get("patch") or "patch.diff"
    patch_path = path.parent / str(name)
    if patch_path.parent == path.parent and patch_path.is_file():
        patch = patch_path.read_text(encoding="utf-8", errors="replace")
    return result, patch


class _Page:
    def __init__(self, traj: Any) -> None:
        self.traj = traj
        self.sources = traj.sources
        self.cites = {int(s["n"]) for s in self.sources if isinstance(s.get("n"), int)}
        self.cards: list[str] = []
        self.n = 0

    def card(self, role: str, head: str, body: str, *, extra_cls: str = "", anchor: str | None = None) -> None:
        self.n += 1
        ident = esc(anchor or f"r{self.n}")
        self.cards.append(f'<section class="card role-{role}{extra_cls}" data-role="{role}" id="{ident}">'
                          f'<header><span class="badge">{esc(role)}</span>{head}</header>{body}</section>')

    def message(self, r: dict[str, Any]) -> None:
        m = r.get("message") or {}
        role = m.get("role", "assistant")
        text = content_text(m.get("content"))
        if role == "tool":  # a tool message logged as a plain message record
            self.tool({"name": m.get("name"), "tool_call_id": m.get("tool_call_id"), "observation": {"text": text}})
            return
        if role != "assistant":
            label = " · note from the agent" if r.get("origin") == "agent" else ""
            body = _folded(text, "text") if role == "system" else \
                f'<div class="text">{_with_citations(highlight(text), self.cites)}</div>'
            self.card(role if role in ("system", "user") else "user", f'<span class="step">{esc(label)}</span>', body)
            return
        step = r.get("step")
        parts = []
        reasoning = m.get("reasoning_content") or m.get("reasoning")
        if reasoning:
            parts.append(f'<details class="reasoning"><summary>Reasoning · {len(str(reasoning)):,} characters'
                         f'</summary><pre>{highlight(str(reasoning))}</pre></details>')
        if text.strip():
            parts.append(f'<div class="text content">{_with_citations(highlight(text), self.cites)}</div>')
        for call in m.get("tool_calls") or []:
            fn = call.get("function") or {}
            args, ok = pretty_json(str(fn.get("arguments", "")))
            diff = edit_as_diff(str(fn.get("arguments", ""))) if fn.get("name") == "str_replace_editor" else None
            body = (f'{_diff_html(diff)}<details class="args"><summary>Arguments</summary>'
                    f'<pre class="json">{esc(args)}</pre></details>') if diff is not None else \
                f'<pre class="json{"" if ok else " invalid"}">{esc(args)}</pre>'
            parts.append(f'<div class="call"><div class="call-head">{esc(fn.get("name"))} '
                         f'<code>{esc(call.get("id", ""))}</code>{"" if ok else " · invalid JSON"}</div>{body}</div>')
        parts.append(f'<details class="raw"><summary>As DeepSeek text</summary>'
                     f'<pre class="raw">{highlight(render_assistant_turn(m))}</pre></details>')
        self.card("assistant", f'<span class="step">step {esc(step)}</span>{_stats(r)}', "".join(parts),
                  anchor=f"step-{step}" if step is not None else None)

    def tool(self, r: dict[str, Any]) -> None:
        obs = r.get("observation") or {}
        text = obs.get("text")
        if text is None:
            text = content_text((r.get("message") or {}).get("content"))
        err = bool(obs.get("is_error"))
        dur = f'<span class="stats">{r["duration_s"]:.2f} s</span>' if isinstance(r.get("duration_s"), (int, float)) \
            else ""
        head = (f'<span class="step">{esc(r.get("name") or "")} · <code>{esc(r.get("tool_call_id") or "")}</code>'
                f'{" · error" if err else ""}</span>{dur}')
        body = _folded(str(text), "obs")
        tb = (obs.get("data") or {}).get("traceback") if isinstance(obs.get("data"), dict) else None
        if isinstance(tb, str) and tb.strip():  # a tool that raised: for the reader, never sent to the model
            last = tb.strip().splitlines()[-1][:200]
            body += (f'<details class="traceback"><summary>Traceback · {esc(last)}</summary>'
                     f'<pre class="traceback">{esc(tb)}</pre></details>')
        self.card("tool", head, body, extra_cls=" error" if err else "")

    def event(self, r: dict[str, Any]) -> None:
        kind = str(r.get("kind") or "event")
        if kind == "sources":
            return
        skip = {"v", "t", "type", "kind", "step", "messages", "summary_message", "sources", "usage"}
        fields = " · ".join(f"{esc(k)}: {esc(v)}" for k, v in r.items() if k not in skip and v not in (None, "", []))
        body = ""
        if kind == "compaction" and r.get("messages"):
            replaced = "\n\n".join(f"[{m.get('role')}] {content_text(m.get('content'))}" for m in r["messages"])
            body = f'<details class="replacement"><summary>Replacement messages</summary>' \
                   f'<pre>{highlight(replaced)}</pre></details>'
        self.card("event", f'<span class="step">{esc(kind)}</span><span class="stats">{fields}</span>', body,
                  extra_cls=f" kind-{esc(kind)}" + (" error" if kind == "error" else ""))

    def end(self, r: dict[str, Any]) -> None:
        parts = [f'<div class="text"><b>Status:</b> {esc(r.get("status"))}</div>']
        if r.get("error"):
            parts.append(f'<div class="text"><b>Error:</b> {esc(r["error"])}</div>')
        if r.get("answer"):
            parts.append(f'<div class="text answer">{_with_citations(highlight(str(r["answer"])), self.cites)}</div>')
        self.card("end", '<span class="step">run ended</span>', "".join(parts), anchor="end",
                  extra_cls=" error" if r.get("status") == "error" else "")


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _token_note(text: str) -> str:
    """`` · N tokens`` counted with the project's offline DeepSeek counter (nothing when unavailable)."""
    try:
        from agentkit.deepseek.tokens import count_text

        return f" · {count_text(text):,} tokens"
    except Exception:  # noqa: BLE001 - the count is a nicety
        return ""


def _in_batch(path: Path) -> bool:
    """Whether the run is a batch task, ``OUT/tasks/ID/trajectory.jsonl`` beside the batch's ledger
    (``OUT/results*.jsonl``, there from the start: ``OUT/index.html`` is written when the batch ends)."""
    tasks = path.resolve().parent.parent
    return tasks.name == "tasks" and any(tasks.parent.glob("results*.jsonl"))


def render_html(path: str | os.PathLike[str], result: dict[str, Any] | None = None) -> str:
    """The viewer page for the trajectory at ``path``. The run's outcome comes from ``result`` (the
    ``result.json`` content) or else the ``result.json`` beside the trajectory, and ``patch.diff``."""
    traj = load(path)
    saved, patch = _read_outcome(Path(path))
    outcome = _outcome(result if result is not None else saved, patch, _in_batch(Path(path)))
    run = traj.run
    page = _Page(traj)
    for r in traj.records:
        kind = r.get("type")
        if kind == "message":
            page.message(r)
        elif kind == "tool_result":
            page.tool(r)
        elif kind == "event":
            page.event(r)
        elif kind == "end":
            page.end(r)
    usage = usage_of(traj)
    latency = sum(_seconds(r.get("latency_s")) for r in traj.records if r.get("type") == "message")
    tool_time = sum(_seconds(r.get("duration_s")) for r in traj.records if r.get("type") == "tool_result")
    cost = f"${usage.cost_usd:.4f}" if usage.cost_usd is not None else "n/a"
    task = traj.task or "agentkit run"
    title = task.strip().splitlines()[0][:120] if task.strip() else "agentkit run"
    status = traj.status
    meta = (f"<span>model <b>{esc(run.get('model'))}</b></span><span>provider <b>{esc(run.get('provider'))}</b>"
            f"</span><span>preset <b>{esc(run.get('preset') or '-')}</b></span>"
            f"<span>status <b class=\"status\">{esc(status)}</b></span><span>steps <b>{traj.steps}</b></span>")
    totals = (f"<span>prompt <b>{usage.prompt:,}</b></span><span>completion <b>{usage.completion:,}</b></span>"
              f"<span>reasoning <b>{usage.reasoning:,}</b></span>"
              f"<span>cached <b>{usage.cached:,}{_share(usage.cached, usage.prompt)}</b></span>"
              f"<span>cost <b>{cost}</b></span><span>model time <b>{latency:.1f} s</b></span>"
              f"<span>tool time <b>{tool_time:.1f} s</b></span>")
    roles = "".join(f'<label><input type="checkbox" data-role="{r}" checked> {r}</label>'
                    for r in ("system", "user", "assistant", "tool", "event"))
    toolbar = (f'<nav class="toolbar"><button type="button" data-act="expand">Expand all</button>'
               f'<button type="button" data-act="collapse">Collapse all</button>{roles}'
               f'<input type="search" id="filter" placeholder="Filter steps…"></nav>')
    sources = ""
    if page.sources:
        rows = []
        for s in page.sources:
            url = _safe_url(s.get("url"))
            link = f'<a href="{esc(url)}" rel="noopener noreferrer" target="_blank">{esc(url)}</a>' if url \
                else esc(s.get("url"))
            rows.append(f'<tr id="source-{esc(s.get("n"))}"><td>{esc(s.get("n"))}</td><td>{esc(s.get("title"))}</td>'
                        f"<td>{link}</td></tr>")
        sources = ('<section class="sources-wrap"><h2>Sources</h2><table class="sources"><thead><tr><th>#</th>'
                   f'<th>Title</th><th>URL</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>')
    try:
        prompt = render_deepseek(path)
        prompt_html = (f'<details class="prompt"><summary>DeepSeek prompt at the last step · {len(prompt):,} '
                       f'characters{_token_note(prompt)}</summary><pre class="raw">{highlight(prompt)}</pre></details>')
    except Exception as e:  # noqa: BLE001 - the page is still useful without it
        prompt_html = f'<p class="stats">DeepSeek prompt unavailable: {esc(e)}</p>'
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)} · agentkit</title><style>{_asset('viewer.css')}</style></head>"
            f'<body class="status-{esc(status)}"><header class="run"><h1>{esc(title)}</h1>'
            f'<div class="meta">{meta}</div><div class="totals">{totals}</div>{toolbar}</header>'
            f'<main id="steps">{outcome}{"".join(page.cards)}{sources}{prompt_html}</main>'
            f"<script>{_asset('viewer.js')}</script></body></html>\n")
