"""The combined report of ``python -m bench all``: one markdown file and one PNG chart.

Each benchmark's own table is reused when its module has one (``render``/``table``/``_table``);
otherwise the JSON goes in a code block, so a new benchmark never breaks the report.
"""

from __future__ import annotations

import importlib
import json
import platform
import time
from pathlib import Path
from typing import Any

TITLES = {
    "overhead": "1. Framework overhead per step (zero-latency server, server time excluded)",
    "concurrency": "2. Concurrent runs against a server with 100 ms latency",
    "sandbox": "3. Sandbox command latency and container start",
    "extraction": "4. Page fetch + extract",
    "tokens": "5. Token counting and prompt rendering (100k-token conversation)",
    "cache": "6. Context management and DeepSeek's prompt cache (60-step scripted episodes)",
}


def section(name: str, result: dict[str, Any]) -> str:
    title = TITLES.get(name, name)
    if "error" in result and len(result) == 1:
        return f"## {title}\n\nnot run: {result['error']}\n"
    body = None
    try:
        mod = importlib.import_module(f"bench.{name}")
        for fn in ("render", "table", "_table"):
            if callable(getattr(mod, fn, None)):
                body = getattr(mod, fn)(result)
                break
    except Exception as e:  # noqa: BLE001 - a table that cannot be drawn falls back to the JSON
        body = None
        result = {**result, "table_error": str(e)}
    if body is None:
        body = "```json\n" + json.dumps(result, indent=2) + "\n```"
    return f"## {title}\n\n{body}\n"


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's two targets, checked against these results."""
    lines = []
    ak = results.get("overhead", {}).get("agentkit", {})
    if isinstance(ak, dict) and "ratio_to_best_peer" in ak:
        r = ak["ratio_to_best_peer"]
        lines.append(f"- Overhead: agentkit's median per step is {r:.2f}× the best peer's "
                     f"(target ≤ 0.33×): {'met' if r <= 1 / 3 else 'NOT met'}.")
    conc = results.get("concurrency", {})
    rows = {name: conc[name]["ratio_to_ideal"] for name in ("agentkit", "agentkit-processes")
            if isinstance(conc.get(name), dict) and "ratio_to_ideal" in conc[name]}
    if rows:
        said = {"agentkit": "in one process", "agentkit-processes": "over one process per core"}
        took = ", ".join(f"{r:.2f}× {said[name]}" for name, r in rows.items())
        # issue 16's target, with --processes: 1.25× (issue 8's 1.15× was met with the hand-written HTTP
        # client that issue 16 replaced by a maintained library, accepting this much)
        lines.append(f"- Concurrency: agentkit took {took} of the ideal wall time (target ≤ 1.25× over "
                     f"processes): {'met' if rows.get('agentkit-processes', 9.9) <= 1.25 else 'NOT met'}.")
    for t in results.get("cache", {}).get("targets", []):
        lines.append(f"- Cache ({t['episode']} episode): {t['target']}: {t['value']}: "
                     f"{'met' if t['met'] else 'NOT met'}.")
    return lines


def markdown(results: dict[str, dict[str, Any]], commands: dict[str, str] | None = None) -> str:
    head = ["# agentkit benchmarks\n",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Python {platform.python_version()} on "
            f"{platform.machine()}, {_cpus()} CPUs. Ratios matter more than absolute numbers.\n"]
    goals = targets(results)
    if goals:
        head.append("\n".join(goals) + "\n")
    parts = []
    for name, res in results.items():
        parts.append(section(name, res))
        if commands and name in commands:
            parts.append(f"Command: `{commands[name]}`\n")
    return "\n".join(head + parts)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def chart(results: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Bar charts of the peer comparisons (overhead, concurrency) and token throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    ovh = {k: v for k, v in results.get("overhead", {}).items() if isinstance(v, dict) and "median_ms" in v}
    if ovh:
        panels.append(("Overhead per step (ms, lower is better)", list(ovh),
                       [[v["median_ms"] for v in ovh.values()], [v["p95_ms"] for v in ovh.values()]],
                       ["median", "p95"]))
    conc = {k: v for k, v in results.get("concurrency", {}).items() if isinstance(v, dict) and "wall_s" in v}
    if conc:
        ideal = next(iter(conc.values()))["ideal_s"]
        panels.append((f"Concurrent runs: wall time (s; ideal {ideal:g} s)", list(conc),
                       [[v["wall_s"] for v in conc.values()]], ["wall"]))
    tok = results.get("tokens", {})
    ops = [k for k in ("render", "count_text_cold", "count_text_warm", "count_tokens_cold",
                       "count_tokens_incremental", "hf_tokenizers") if isinstance(tok.get(k), dict)]
    if ops:
        panels.append(("100k-token conversation (M tokens/s, log scale)", ops,
                       [[tok[k]["tokens_per_s"] / 1e6 for k in ops]], ["throughput"]))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, labels, series, names) in zip(axes[0], panels):
        width = 0.8 / len(series)
        for j, (vals, nm) in enumerate(zip(series, names)):
            xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(labels))]
            bars = ax.bar(xs, vals, width, label=nm)
            ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_xticks(range(len(labels)), [_wrap(lb) if len(labels) > 3 else lb for lb in labels], fontsize=8)
        ax.set_title(title, fontsize=10)
        if len(series) > 1:
            ax.legend(fontsize=8)
        if "log scale" in title:
            ax.set_yscale("log")
        if title.startswith("Concurrent"):
            ax.axhline(ideal, color="grey", linestyle="--", linewidth=1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _wrap(label: str) -> str:
    """Two lines for long tick labels (``agentkit-shared-client`` -> ``agentkit-\nshared-client``)."""
    if "_" in label:
        head, tail = label.rsplit("_", 1)
        return head + "\n" + tail
    if "-" in label:
        head, tail = label.split("-", 1)
        return head + "-\n" + tail
    return label


def write(results: dict[str, dict[str, Any]], out_dir: str | Path = "bench/results",
          commands: dict[str, str] | None = None) -> dict[str, Path]:
    """Write ``<name>.json`` per benchmark, ``report.md`` and ``chart.png``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, res in results.items():
        p = out / f"{name}.json"
        p.write_text(json.dumps(res, indent=2) + "\n")
        paths[name] = p
    paths["report"] = out / "report.md"
    paths["report"].write_text(markdown(results, commands))
    try:
        png = chart(results, out / "chart.png")
    except ImportError:  # matplotlib is the optional `bench` extra
        png = None
    if png is not None:
        paths["chart"] = png
    return paths
