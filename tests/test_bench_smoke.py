"""Each benchmark runs, in a tiny configuration, and produces well-formed results.

No timing is asserted here (numbers depend on the machine); only that the harness measures what it
says: the scripted server plays the episode, the drivers finish it, the counts add up, and the
report and chart get written. Peers run only when their virtualenv already exists under
bench/.venvs (creating one needs PyPI, and tests never leave loopback).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench import concurrency, overhead, percentile, report, tokens
from bench.__main__ import run_all
from bench.peers import FRAMEWORKS, ServerProcess, run_driver

ROOT = Path(__file__).resolve().parent.parent


def _chat(url: str, run: str, n_assistant: int = 0) -> dict:
    msgs = [{"role": "user", "content": f"go [[run:{run}]]"}] + [{"role": "assistant", "content": "x"}] * n_assistant
    r = httpx.post(url + "/chat/completions", json={"model": "m", "messages": msgs}, timeout=10)
    r.raise_for_status()
    return r.json()


def test_server_plays_each_episode_ending_and_times_requests() -> None:
    with ServerProcess() as srv:
        for final, last_tool in (("text", None), ("bash-submit", "bash"), ("final_answer", "final_answer")):
            url = f"{srv.url}/{final}/bash/2/v1"
            replies = [_chat(url, f"r-{final}")["choices"][0] for _ in range(3)]
            for choice in replies[:2]:
                call = choice["message"]["tool_calls"][0]["function"]
                assert call["name"] == "bash" and json.loads(call["arguments"])["command"].startswith("echo step-")
                assert choice["finish_reason"] == "tool_calls"
            last = replies[2]["message"]
            if last_tool is None:
                assert last["content"] == "done" and not last.get("tool_calls")
            else:
                assert last["tool_calls"][0]["function"]["name"] == last_tool
        echo = _chat(f"{srv.url}/text/echo/1/v1", "r-echo")["choices"][0]["message"]["tool_calls"][0]["function"]
        assert echo["name"] == "echo" and json.loads(echo["arguments"]) == {"text": "step-0"}
        stats = srv.stats()
        assert len(stats["r-text"]) == 3 and all(sent >= recv for recv, sent in stats["r-text"])
        srv.reset()
        assert srv.stats() == {}


def test_step_gaps_and_percentile() -> None:
    assert overhead.step_gaps([[0.0, 0.001], [0.011, 0.012], [0.032, 0.033]]) == pytest.approx([10.0, 20.0])
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([5.0], 95) == 5.0 and percentile([], 95) == 0.0


def test_overhead_agentkit_tiny() -> None:
    res = overhead.run(steps=3, frameworks=["agentkit"], rounds=2)
    r = res["agentkit"]
    assert "error" not in r, r
    assert r["steps"] == 6 and r["statuses"] == ["done", "done"]
    assert r["p95_ms"] >= r["median_ms"] > 0 and r["peak_mb"] > 10
    assert "agentkit" in overhead.render(res)


@pytest.mark.parametrize("name", [n for n in FRAMEWORKS if n != "agentkit"])
def test_peer_driver_tiny(name: str) -> None:
    fw = FRAMEWORKS[name]
    if not fw.ready:
        pytest.skip(f"{fw.venv} not created (python -m bench overhead creates it from PyPI)")
    with ServerProcess() as srv:
        out = run_driver(fw, srv.url, steps=2, warmup=False, tag="smoke")
        assert out["statuses"] in (["Submitted"], ["done"]), out
        assert len(srv.stats()["smoke-0"]) == 3  # two tool turns and the final turn


def test_concurrency_agentkit_tiny() -> None:
    res = concurrency.run(runs=4, calls=3, latency=0.01, rounds=2,
                          frameworks=["agentkit", "agentkit-shared-client", "agentkit-processes"])
    for r in res.values():
        assert "error" not in r, r
        assert len(r["wall_s_rounds"]) == 2 and r["wall_s"] == pytest.approx(sum(r["wall_s_rounds"]) / 2)
        assert r["runs_ok"] == 4 and r["calls_served"] == 12 and r["ideal_s"] == pytest.approx(0.03)
        assert r["ratio_to_ideal"] == pytest.approx(r["wall_s"] / r["ideal_s"])


def test_tokens_tiny() -> None:
    from agentkit.deepseek.render import render_prompt
    from agentkit.messages import messages_from_openai
    from agentkit.deepseek.tokens import count_text

    msgs = tokens.make_conversation(target=3000)
    assert msgs == tokens.make_conversation(target=3000)  # seeded: the same text every run
    assert msgs != tokens.make_conversation(target=3000, seed=1)
    res = tokens.run(target=3000, repeat=2)
    prompt = render_prompt(messages_from_openai(msgs), tools=[tokens.BASH_TOOL])
    assert res["prompt_tokens"] == count_text(prompt) >= 2500
    for op in tokens.OPERATIONS[:-1]:
        assert res[op]["tokens_per_s"] > 0, op
    if "hf_tokenizers" in res:  # the reference tokenizer counts the same text, give or take a few specials
        hf = res["hf_tokenizers"]
        assert abs(hf["tokens"] - hf["agentkit_tokens"]) <= 0.01 * hf["tokens"], hf
    assert "M tokens/s" in tokens.render(res)


def test_all_writes_json_report_and_chart(tmp_path: Path) -> None:
    options = {"tokens": {"target": 2000, "repeat": 1},
               "overhead": {"steps": 2, "frameworks": ["agentkit"], "rounds": 1},
               "concurrency": {"runs": 2, "calls": 2, "latency": 0.01, "frameworks": ["agentkit"]},
               "sandbox": {"n": 3, "starts": 1},
               "extraction": {"per_kind": 1},
               "cache": {"steps": 8, "episodes": ("even",), "windows": (32_000,)}}
    done = run_all(tuple(options), options=options, out_dir=str(tmp_path))
    for name in options:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data == json.loads(json.dumps(done["results"][name]))
    for name in ("tokens", "overhead", "concurrency"):
        assert "error" not in done["results"][name], done["results"][name]
    md = (tmp_path / "report.md").read_text()
    for title in report.TITLES.values():
        assert f"## {title}" in md
    png = tmp_path / "chart.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_cli_single_benchmark_json() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "overhead", "--json", "--steps", "2", "--rounds", "1",
                           "--frameworks", "agentkit"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"agentkit"}
    assert {"median_ms", "p95_ms", "peak_mb"} <= set(data["agentkit"])
    bad = subprocess.run([sys.executable, "-m", "bench", "nonesuch"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown benchmark" in bad.stderr


def test_index_tiny(tmp_path: Path) -> None:
    from bench import index

    res = index.run(docs=150, n_queries=10, html_share=0.1, keep=str(tmp_path))
    b = res["build"]
    assert b["passages"] >= 150 and b["failed"] == 0 and b["docs_per_s"] > 0 and b["index_mb"] >= 0
    assert res["refresh_1pct_changed"]["files"] == 1
    assert res["query"]["n"] == 10 and res["query"]["with_hits"] == 10
    assert res["query"]["p95_ms"] >= res["query"]["median_ms"] > 0
    assert "query median ms" in index.render(res)
    assert index.queries(index.generate(tmp_path / "again", 20), 5) == index.queries(
        index.generate(tmp_path / "again2", 20), 5)  # seeded: the same corpus and queries every run
