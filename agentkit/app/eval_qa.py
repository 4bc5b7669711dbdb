"""``agentkit eval qa``: the research agent over a QA file, scored per item and in sum.

Each line of QA.jsonl is ``{"id", "question", "answer", "aliases"?}``. Questions run as research
tasks on the batch machinery (workers, resume, the global cost budget, per-task folders, the
ledger). Scores per item: exact match and token F1 after SQuAD's normalization (lower case, no
punctuation, no articles, single spaces), computed on the answer without its ``[citation:N]``
markers and source list, the best over the gold answer and its aliases; ``contains`` says whether a
normalized gold answer appears in the normalized response, which suits the sentences a research
agent writes. With a judge model, an LLM reads question, gold answer and response and says
correct or incorrect with a reason (the prompt: ``agentkit/data/qa-judge.md``); each judgement is a
trajectory of its own (``tasks/<id>/judge.jsonl``) and its cost counts.

``OUT/results.jsonl`` is the batch's ledger, one line per item with the scores added;
``OUT/report.json`` holds the sums.
"""

from __future__ import annotations

import collections
import json
import re
import string
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentkit.app.records import jsonl_lines, validated
from agentkit.errors import AgentkitError, ConfigError

REPORT = "report.json"
JUDGE_TRAJECTORY = "judge.jsonl"
JUDGE_PROMPT = Path(__file__).resolve().parents[1] / "data" / "qa-judge.md"


class QAItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v

    @property
    def golds(self) -> list[str]:
        return [self.answer, *self.aliases]


def load_qa(path: str | Path) -> list[QAItem]:
    """Parse QA.jsonl; a bad line is a one-line ``ConfigError`` naming it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{path}: no such file; pass a JSONL file of {{\"id\", \"question\", \"answer\"}} lines")
    return [item for _, item in validated(jsonl_lines(path), QAItem, "id", field="line", duplicate="id")]


# -- scores ---------------------------------------------------------------------------------------------

_CITATION = re.compile(r"\s*\[citation:\s*\d+(?:\s*[,;]\s*\d+)*\]")
_SOURCES = re.compile(r"\n\s*(?:#+\s*)?(?:\*\*)?(?:sources|references)(?:\*\*)?\s*:?\s*\n.*\Z", re.I | re.S)


def strip_citations(text: str) -> str:
    """The answer without ``[citation:N]`` markers and without a trailing source list."""
    return _CITATION.sub("", _SOURCES.sub("", "\n" + (text or "")).lstrip("\n")).strip()


def normalize_answer(text: str) -> str:
    """SQuAD's normalization: lower case, punctuation and articles removed, whitespace collapsed."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_score(prediction: str, gold: str) -> float:
    """Token F1 between the normalized prediction and gold (SQuAD v1.1's definition)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def score(response: str, golds: list[str]) -> dict[str, Any]:
    """Exact match, F1 and ``contains`` of a response, the best over ``golds``."""
    clean = strip_citations(response)
    norm = normalize_answer(clean)
    return {"exact_match": max(exact_match(clean, g) for g in golds),
            "f1": round(max(f1_score(clean, g) for g in golds), 4),
            "contains": any(normalize_answer(g) and f" {normalize_answer(g)} " in f" {norm} " for g in golds)}


def citations(text: str) -> list[int]:
    """The distinct source numbers an answer cites, in order of first use."""
    seen: list[int] = []
    for group in re.findall(r"\[citation:\s*([\d,;\s]+)\]", text or ""):
        for n in re.findall(r"\d+", group):
            if int(n) not in seen:
                seen.append(int(n))
    return seen


# -- the judge -------------------------------------------------------------------------------------------

def judge_prompt(item: QAItem, response: str) -> str:
    gold = item.answer + (f" (also accepted: {'; '.join(item.aliases)})" if item.aliases else "")
    return (JUDGE_PROMPT.read_text(encoding="utf-8").replace("{question}", item.question)
            .replace("{gold}", gold).replace("{response}", strip_citations(response) or "(no answer)"))


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """(correct, reason) from the judge's reply: a JSON object, or else a leading correct/incorrect."""
    for m in re.finditer(r"\{.*?\}", text or "", flags=re.S):
        try:
            data = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("correct"), bool):
            return data["correct"], str(data.get("reason") or "")
    m = re.search(r"\b(incorrect|correct)\b", (text or "").lower())
    if m:
        return m.group(1) == "correct", (text or "").strip()[:300]
    return None, f"unreadable verdict: {(text or '').strip()[:200]}"


async def judge(item: QAItem, response: str, model_spec: str, folder: Path, *,
                provider: str | None = None, base_url: str | None = None) -> dict[str, Any]:
    """Ask the judge model about one response; its call is written to ``folder/judge.jsonl``."""
    from agentkit.agent import Agent, Limits
    from agentkit.models import make_model

    model = make_model(model_spec, provider=provider, base_url=base_url)
    try:
        agent = Agent(model, tools=[], system=None, limits=Limits(max_steps=1), thinking=False,
                      trajectory=folder / JUDGE_TRAJECTORY, run_info={"preset": "qa-judge", "item": item.id})
        run = agent.iter(judge_prompt(item, response))
        async for _ in run:
            pass
        result = run.result
    finally:
        await model.aclose()
    if result is None or result.status == "error":
        return {"correct": None, "reason": f"judge failed: {getattr(result, 'error', None) or 'no result'}",
                "cost_usd": float(getattr(result, "cost_usd", 0.0) or 0.0)}
    correct, reason = parse_verdict(result.answer or "")
    return {"correct": correct, "reason": reason, "cost_usd": float(result.cost_usd or 0.0),
            "trajectory": JUDGE_TRAJECTORY}


# -- the whole run ---------------------------------------------------------------------------------------

class QAOptions(BaseModel):
    judge_model: str | None = None
    judge_provider: str | None = None
    judge_base_url: str | None = None


def build_report(items: list[QAItem], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sums over the items that finished: n, exact_match, f1, contains, judge_accuracy (when judged),
    cited (share of answers with a citation), cost_usd."""
    done = [results[i.id] for i in items if i.id in results]
    n = len(done)

    def mean(key: str) -> float | None:
        return round(sum(float(bool(r.get(key))) if isinstance(r.get(key), bool) else float(r.get(key) or 0.0)
                         for r in done) / n, 4) if n else None

    judged = [r["judge"]["correct"] for r in done if isinstance(r.get("judge"), dict)
              and isinstance(r["judge"].get("correct"), bool)]
    report: dict[str, Any] = {
        "n": n, "total": len(items), "exact_match": mean("exact_match"), "f1": mean("f1"),
        "contains": mean("contains"),
        "cited": round(sum(bool(r.get("citations")) for r in done) / n, 4) if n else None,
        "answered": sum(r.get("status") == "done" for r in done),
        "cost_usd": round(sum(float(r.get("cost_usd") or 0.0) for r in done), 6),
    }
    if judged:
        report["judge_accuracy"] = round(sum(judged) / len(judged), 4)
        report["judged"] = len(judged)
    report["not_run_ids"] = [i.id for i in items if i.id not in results]
    return report


def report_table(report: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"QA: {report['n']} of {report['total']} answered", show_header=True)
    for col in ("id", "status", "EM", "F1", "judge", "cites", "cost"):
        table.add_column(col, justify="left" if col in ("id", "status") else "right")
    for r in rows:
        j = r.get("judge") or {}
        table.add_row(r["id"], str(r.get("status")), "1" if r.get("exact_match") else "0", f"{r.get('f1', 0):.2f}",
                      {True: "yes", False: "no"}.get(j.get("correct"), "-"), str(len(r.get("citations") or [])),
                      f"${float(r.get('cost_usd') or 0):.4f}")

    def pct(x: Any) -> str:
        return "-" if x is None else f"{x:.1%}"

    table.add_row("total", f"{report['answered']} done", pct(report["exact_match"]), pct(report["f1"]),
                  pct(report.get("judge_accuracy")), pct(report["cited"]), f"${report['cost_usd']:.4f}")
    return table


async def run_qa(items: list[QAItem], base: Any, out: str | Path, qa: QAOptions, *, workers: int = 2,
                 max_cost: float | None = None,
                 on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Answer and score ``items`` into ``out``; returns the report (also OUT/report.json)."""
    from agentkit.app.batch import BatchTask, read_results, run_batch
    from agentkit.app.runner import run_or_resume

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_id = {i.id: i for i in items}
    tasks = [BatchTask(id=i.id, preset="research", task=i.question) for i in items]

    async def runner(opts: Any) -> dict[str, Any]:
        result = await run_or_resume(opts)
        item = by_id[opts.run_id]
        answer = result.get("answer") or ""
        scored: dict[str, Any] = {"question": item.question, "gold": item.answer, **score(answer, item.golds),
                                  "citations": citations(answer)}
        if qa.judge_model:
            try:
                verdict = await judge(item, answer, qa.judge_model, Path(result["out"]),
                                      provider=qa.judge_provider, base_url=qa.judge_base_url)
            except AgentkitError as e:
                verdict = {"correct": None, "reason": f"judge failed: {e}", "cost_usd": 0.0}
            scored["judge"] = verdict
            scored["cost_usd"] = float(result.get("cost_usd") or 0.0) + verdict["cost_usd"]
        return {**result, **scored}

    await run_batch(tasks, base, out, workers=workers, max_cost=max_cost, on_result=on_result, runner=runner)
    results = {r["id"]: r for r in read_results(out)}
    report = build_report(items, results)
    (out / REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report
