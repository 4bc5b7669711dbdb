"""Local-document search at scale: index N generated documents, then time queries.

The documents are written here (no downloaded corpus): ``.md`` and ``.txt`` files (plus a share of
``.html`` pages, ``--html-share``) of 80-400 words drawn from a 30,000-word synthetic vocabulary
with Zipf-distributed frequencies (exponent 1.0), as in natural text, so some words occur in
most documents and most words in few. Queries are 2-4 words taken from one document, skipping the
100 most frequent vocabulary words (in real text those are function words, which the index's
query drops as stopwords).

Measured: the first build (documents/s, passages, index size on disk), a refresh with nothing
changed (the cost of the stat walk ``agentkit research --search-backend local:DIR`` pays before its
first search), a refresh after 1% of the files changed, and query latency through
``LocalIndex.search`` (top 5 passages with snippets; median and p95 over ``--queries`` queries,
after 20 warm-up queries). Target: median under 50 ms at 100,000 documents.

Run: ``python -m bench index [--docs N] [--queries Q] [--html-share F] [--seed S] [--json]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import median, percentile, table

VOCAB = 30_000
COMMON = 100  # the most frequent ranks: not used in queries (function words in real text)
TARGET_MEDIAN_MS = 50.0


def vocabulary(n: int = VOCAB, seed: int = 0) -> list[str]:
    """``n`` distinct pronounceable words (2-4 syllables)."""
    rng = random.Random(seed)
    onsets, vowels, codas = "b c d f g h j k l m n p r s t v w z br cl dr fl gr pl st tr".split(), "aeiou", ["", "n", "r", "s", "l"]
    words: dict[str, None] = {}
    while len(words) < n:
        words["".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                      for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def generate(folder: Path, docs: int, *, html_share: float = 0.0, seed: int = 0) -> list[list[str]]:
    """Write ``docs`` documents under ``folder`` (100 per subfolder); returns each one's words."""
    rng = random.Random(seed)
    words = vocabulary(seed=seed)
    cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(words))))
    texts: list[list[str]] = []
    for i in range(docs):
        sub = folder / f"d{i // 100:04d}"
        if i % 100 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        body = rng.choices(words, cum_weights=cum, k=rng.randint(80, 400))
        texts.append(body)
        title = " ".join(rng.choices(words[COMMON:], k=3)).capitalize()
        paras = [" ".join(body[j:j + 60]) + "." for j in range(0, len(body), 60)]
        if rng.random() < html_share:
            inner = "".join(f"<p>{p}</p>" for p in paras)
            (sub / f"doc{i}.html").write_text(f"<html><head><title>{title}</title></head><body><nav>Home | About"
                                              f"</nav><article><h1>{title}</h1>{inner}</article></body></html>")
        elif i % 2:
            (sub / f"doc{i}.md").write_text(f"# {title}\n\n" + "\n\n".join(paras) + "\n")
        else:
            (sub / f"doc{i}.txt").write_text(title + "\n\n" + "\n\n".join(paras) + "\n")
    return texts


def queries(texts: list[list[str]], n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed + 1)
    common = set(vocabulary(seed=seed)[:COMMON])
    out = []
    while len(out) < n:
        pool = sorted(set(rng.choice(texts)) - common)
        if len(pool) >= 2:
            out.append(" ".join(rng.sample(pool, min(len(pool), rng.randint(2, 4)))))
    return out


def run(docs: int = 100_000, n_queries: int = 300, html_share: float = 0.0, seed: int = 0,
        keep: str | None = None) -> dict[str, Any]:
    from agentkit.tools.local_index import LocalIndex

    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="agentkit-bench-index-"))
    corpus, db = tmp / "corpus", tmp / "index.sqlite"
    try:
        t0 = time.perf_counter()
        texts = generate(corpus, docs, html_share=html_share, seed=seed)
        written = time.perf_counter() - t0
        corpus_bytes = sum(f.stat().st_size for f in corpus.rglob("*") if f.is_file())
        with LocalIndex(corpus, path=db) as ix:
            build = ix.refresh()
            again = ix.refresh()
            changed = random.Random(seed).sample(sorted(build.read), max(1, docs // 100))
            for rel in changed:
                with open(corpus / rel, "a") as f:
                    f.write("\n\nAn added closing paragraph.\n")
            later = ix.refresh()
            qs = queries(texts, n_queries + 20, seed)
            times, hits = [], 0
            for i, q in enumerate(qs):
                t = time.perf_counter()
                found = ix.search(q, 5)
                if i >= 20:
                    times.append((time.perf_counter() - t) * 1000)
                    hits += bool(found)
        res = {
            "docs": docs, "html_share": html_share, "corpus_mb": round(corpus_bytes / 1e6, 1),
            "generate_s": round(written, 2), "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "build": {"seconds": round(build.seconds, 2), "docs_per_s": round(docs / build.seconds),
                      "passages": build.passages, "failed": len(build.failed),
                      "index_mb": round(build.size_bytes / 1e6, 1)},
            "refresh_unchanged_s": round(again.seconds, 3),
            "refresh_1pct_changed": {"files": len(later.read), "seconds": round(later.seconds, 2)},
            "query": {"n": len(times), "median_ms": round(median(times), 2), "p95_ms": round(percentile(times, 95), 2),
                      "max_ms": round(max(times), 2) if times else 0.0, "with_hits": hits},
        }
        res["target"] = {"median_ms": TARGET_MEDIAN_MS, "met": res["query"]["median_ms"] < TARGET_MEDIAN_MS}
        return res
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def render(res: dict[str, Any]) -> str:
    b, q = res["build"], res["query"]
    rows = [[f"{res['docs']:,}", f"{res['corpus_mb']} MB", f"{b['seconds']} s", f"{b['docs_per_s']:,}",
             f"{b['passages']:,}", f"{b['index_mb']} MB", f"{res['refresh_unchanged_s']} s",
             f"{res['refresh_1pct_changed']['seconds']} s", q["median_ms"], q["p95_ms"]]]
    goal = (f"\n\nQuery median {q['median_ms']} ms over {q['n']} queries ({q['with_hits']} with hits): target < "
            f"{TARGET_MEDIAN_MS:g} ms: {'met' if res['target']['met'] else 'NOT met'}.")
    return table(["documents", "corpus", "build", "docs/s", "passages", "index size", "refresh (no change)",
                  "refresh (1% changed)", "query median ms", "query p95 ms"], rows) + goal


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench index", description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--html-share", type=float, default=0.0, help="share of documents written as HTML (0..1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="write the corpus and index here and keep them")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.docs, a.queries, a.html_share, a.seed, a.keep)
    print(json.dumps(res, indent=2) if a.json else render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
