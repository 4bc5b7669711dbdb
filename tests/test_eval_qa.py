"""``agentkit eval qa``: SQuAD-style scores (normalization, exact match, token F1 on SQuAD's own
examples), citation stripping, the judge's verdicts, and an offline run of the research agent over
tests/data/corpus with the local backend, replayed models and a replayed judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.app.eval_qa import (build_report, citations, exact_match, f1_score, load_qa, normalize_answer,
                                  parse_verdict, score, strip_citations)
from agentkit.errors import ConfigError
from tests.fixtures_cli import cli_env, run_cli, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
QA = ROOT / "tests" / "data" / "qa" / "orrin.jsonl"
CORPUS = ROOT / "tests" / "data" / "corpus"
RESEARCH = ROOT / "examples" / "replays" / "local-research.jsonl"
JUDGE = ROOT / "examples" / "replays" / "qa-judge.jsonl"


def test_normalization_is_squads() -> None:
    assert normalize_answer("The Cat!") == "cat"
    assert normalize_answer("  A  dog,  an apple;  THE end. ") == "dog apple end"
    assert normalize_answer("Levi's Stadium") == "levis stadium"
    assert normalize_answer("theory of the atom") == "theory of atom"  # articles as words only


@pytest.mark.parametrize("pred, gold, em, f1", [
    ("Denver Broncos", "Denver Broncos", True, 1.0),
    ("the Denver Broncos", "Denver Broncos", True, 1.0),
    ("Broncos", "Denver Broncos", False, 2 / 3),
    ("Carolina Panthers", "Denver Broncos", False, 0.0),
    ("Santa Clara, California", "Levi's Stadium", False, 0.0),
    ("Levi's Stadium in the San Francisco Bay Area", "Levi's Stadium", False, 2 * (2 / 7) / (2 / 7 + 1)),
    ("", "Denver Broncos", False, 0.0),
])
def test_exact_match_and_f1_on_squad_examples(pred: str, gold: str, em: bool, f1: float) -> None:
    assert exact_match(pred, gold) is em
    assert f1_score(pred, gold) == pytest.approx(f1)


def test_citations_and_the_source_list_are_removed_before_scoring() -> None:
    text = "It was founded in 1921 [citation:1][citation:3].\n\n## Sources\n\n1. [A](file:///a.md#p1)\n"
    assert strip_citations(text) == "It was founded in 1921."
    assert strip_citations("1921 [citation:2, 4]\nSources:\n1. x") == "1921"
    assert citations("a [citation:2] b [citation:1][citation:2] c [citation:3, 5]") == [2, 1, 3, 5]
    s = score("1921 [citation:1]", ["1921"])
    assert s == {"exact_match": True, "f1": 1.0, "contains": True}
    # the best over the gold answer and its aliases
    assert score("The astronomer Mira Kessel.", ["Kessel", "the astronomer Mira Kessel"])["exact_match"] is True
    assert score("It opened in 19210.", ["1921"])["contains"] is False


def test_judge_verdicts() -> None:
    assert parse_verdict('{"correct": true, "reason": "same year"}') == (True, "same year")
    assert parse_verdict('Sure.\n```json\n{"correct": false, "reason": "wrong person"}\n```') == (False, "wrong person")
    assert parse_verdict("Incorrect: the year differs")[0] is False
    assert parse_verdict("CORRECT")[0] is True
    assert parse_verdict("no idea")[0] is None


def test_a_bad_qa_line_is_one_line_error(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "qa.jsonl", [{"id": "a", "question": "q", "answer": "x"}, {"id": "b", "question": "q"}])
    with pytest.raises(ConfigError, match=r"qa.jsonl:2: answer: Field required"):
        load_qa(bad)
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "question": "q", "answer": "x"}] * 2)
    with pytest.raises(ConfigError, match="duplicate id 'a'"):
        load_qa(dup)
    assert [i.golds for i in load_qa(QA)] == [["1921"], ["Mira Kessel", "the astronomer Mira Kessel"]]


def test_report_sums() -> None:
    items = load_qa(QA)
    results = {"founded": {"id": "founded", "status": "done", "exact_match": True, "f1": 1.0, "contains": True,
                           "citations": [1], "cost_usd": 0.25, "judge": {"correct": True}},
               "founder": {"id": "founder", "status": "done", "exact_match": False, "f1": 0.5, "contains": False,
                           "citations": [], "cost_usd": 0.5, "judge": {"correct": False}}}
    report = build_report(items, results)
    assert report["n"] == 2 and report["exact_match"] == 0.5 and report["f1"] == 0.75
    assert report["judge_accuracy"] == 0.5 and report["cited"] == 0.5 and report["cost_usd"] == 0.75
    assert "judge_accuracy" not in build_report(items, {k: {**v, "judge": None} for k, v in results.items()})


def _run(tmp_path: Path, *extra: str, replay: Path = RESEARCH, qa: Path = QA) -> tuple[dict, list[dict], Path]:
    out = tmp_path / "out"
    proc = run_cli("eval", "qa", str(qa), "--search-backend", f"local:{CORPUS}", "--model", f"replay:{replay}",
                   "--out", str(out), *extra, env=cli_env(XDG_CACHE_HOME=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return report, sorted(rows, key=lambda r: r["id"]), out


def test_offline_qa_over_the_local_corpus_with_a_judge(tmp_path: Path) -> None:
    report, rows, out = _run(tmp_path, "--judge-model", f"replay:{JUDGE}", "--workers", "1")
    # the replayed answer: "The Orrin Valley Observatory was founded in 1921 by the astronomer Mira Kessel
    # [citation:1]; research there ended in 1988 and it reopened as a museum ... in 2003 [citation:2]."
    answer = strip_citations(rows[0]["answer"])
    assert rows[0]["id"] == "founded" and rows[0]["citations"] == [1, 2]
    assert rows[0]["exact_match"] is False and rows[0]["f1"] == round(f1_score(answer, "1921"), 4) > 0
    assert rows[1]["f1"] == round(f1_score(answer, "the astronomer Mira Kessel"), 4)  # the alias scores best
    assert rows[0]["contains"] is rows[1]["contains"] is True
    assert rows[0]["judge"]["correct"] is True and rows[0]["judge"]["reason"]
    assert report["n"] == 2 and report["exact_match"] == 0.0 and report["judge_accuracy"] == 1.0
    assert report["f1"] == round((rows[0]["f1"] + rows[1]["f1"]) / 2, 4) and report["cited"] == 1.0
    assert "cost_usd" in report and report["contains"] == 1.0
    # the judge's call is a trajectory of its own beside the item's
    judge = [json.loads(line) for line in (out / "tasks" / "founded" / "judge.jsonl").read_text().splitlines()]
    assert judge[0]["type"] == "run" and "Gold answer: 1921" in json.dumps(judge)
    assert (out / "tasks" / "founded" / "answer.md").is_file()


def test_offline_qa_short_answers_score_exact_match(tmp_path: Path) -> None:
    replay = write_jsonl(tmp_path / "short.jsonl", [
        {"role": "assistant", "reasoning": "Search.", "content": "", "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "search", "arguments": json.dumps({"questions": "Orrin Valley Observatory founded"})}}]},
        {"role": "assistant", "reasoning": "Found it.", "content": "1921 [citation:1]"}])
    report, rows, _ = _run(tmp_path, replay=replay)
    assert [(r["id"], r["exact_match"], r["f1"]) for r in rows] == [("founded", True, 1.0), ("founder", False, 0.0)]
    assert report["exact_match"] == 0.5 and report["f1"] == 0.5 and report["cited"] == 1.0
    assert "judge_accuracy" not in report
