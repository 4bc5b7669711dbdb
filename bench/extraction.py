"""Fetch + extraction quality and speed, on pages generated here (no third-party pages).

Quality is measured the way trafilatura's own benchmark does it: every page comes with passages
that must be in the output ("with": the article text) and passages that must not ("without":
navigation, footers, cookie banners, sidebars, comments). A passage counts as found when it is a
substring of the output after whitespace normalisation. Precision = TP / (TP + FP), recall =
TP / (TP + FN), where TP are "with" passages found and FP "without" passages found.

Our fetcher returns markdown, so inline markup (``**bold**``, ``[link](url)``) can split a
sentence; the ``markdown-stripped`` rows remove that markup before matching, the ``strict`` rows
do not. The ``trafilatura.extract`` row runs trafilatura alone (plain text, default options) on the
same bytes, to show the fetcher loses nothing trafilatura finds. All pages of a long document are
fetched (``page=1..N``) and joined, so paging losses would show up as misses.

Speed: pages/second for the whole fetch path (HTTP on 127.0.0.1 + extraction + paging), one at a
time and 8 at a time, and for extraction alone.

Run: ``python bench/extraction.py [--pages-per-kind N] [--seed S] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import html as htmlmod
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORDS = (
    "river orbit lantern copper harvest meadow signal granite vessel quarry thunder saddle beacon "
    "willow canyon ember falcon glacier harbor island jasmine kettle ledger marble nectar oyster "
    "pepper quiver ribbon summit timber umbrella velvet walnut yarrow zephyr anchor bramble cinder "
    "delta engine fjord garnet hollow indigo juniper kernel lagoon mosaic nomad orchard pylon quartz "
    "rampart sextant tundra upland vortex wharf yeoman zenith abacus bastion cobalt dynamo estuary "
    "ferrous gondola hydrant isotope jigsaw kiln lattice monsoon nebula obelisk paddock quorum "
    "reservoir sorrel trellis utensil vintage warden xylem yodel zinc almanac bellows cairn dormant "
    "eclipse fathom gravel hemlock inlet jetty kayak lichen mantle nutmeg outpost plinth quill "
    "rudder sluice tether ulcer vestige wicker yacht zodiac measured quietly northern ancient "
    "careful hidden silver golden narrow distant frozen gentle hollow modest rapid sturdy subtle "
    "tangled vivid weary"
).split()
ACCENTED = "café crème naïve façade déjà vu über straße grüße über fiancée jalapeño smörgåsbord".split()


def sentence(rng: random.Random, n: tuple[int, int] = (9, 16), accents: bool = False) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(*n))]
    if accents:
        for _ in range(2):
            words[rng.randrange(len(words))] = rng.choice(ACCENTED)
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


@dataclass
class Page:
    path: str
    body: bytes
    content_type: str
    kind: str
    with_: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)


def _para(rng: random.Random, page: Page, accents: bool = False, markup: bool = False) -> str:
    sents = [sentence(rng, accents=accents) for _ in range(rng.randint(2, 4))]
    page.with_.append(rng.choice(sents))
    text = " ".join(htmlmod.escape(s) for s in sents)
    if markup:  # emphasise or link one word inside the paragraph
        words = text.split(" ")
        i = rng.randrange(1, len(words) - 1)
        words[i] = rng.choice([f"<b>{words[i]}</b>", f"<em>{words[i]}</em>", f'<a href="/w/{i}">{words[i]}</a>'])
        text = " ".join(words)
    return f"<p>{text}</p>"


def _boiler(rng: random.Random, page: Page, n: int = 1) -> list[str]:
    out = [sentence(rng, (8, 12)) for _ in range(n)]
    page.without.extend(out)
    return out


def _nav(rng: random.Random, page: Page) -> str:
    items = _boiler(rng, page, 3)
    links = "".join(f'<li><a href="/s/{i}">{htmlmod.escape(t)}</a></li>' for i, t in enumerate(items))
    return f'<header><nav class="menu"><ul>{links}</ul></nav></header>'


def _footer(rng: random.Random, page: Page) -> str:
    (t,) = _boiler(rng, page)
    return f'<footer class="site-footer"><p>{htmlmod.escape(t)}</p><p>Copyright 2024. All rights reserved.</p></footer>'


def _cookie(rng: random.Random, page: Page) -> str:
    (t,) = _boiler(rng, page)
    return f'<div id="cookie-banner" class="cookie-consent"><p>{htmlmod.escape(t)}</p><button>Accept</button></div>'


def _sidebar(rng: random.Random, page: Page) -> str:
    items = _boiler(rng, page, 3)
    links = "".join(f'<li><a href="/r/{i}">{htmlmod.escape(t)}</a></li>' for i, t in enumerate(items))
    return f'<aside class="sidebar related"><h3>Related stories</h3><ul>{links}</ul></aside>'


def _doc(title: str, head_extra: str, body: str, charset: str = "utf-8") -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="{charset}"><title>{htmlmod.escape(title)}</title>'
            f"{head_extra}</head><body>{body}</body></html>")


def news(rng: random.Random, i: int) -> Page:
    page = Page(f"/news/{i}", b"", "text/html; charset=utf-8", "news")
    title = sentence(rng, (5, 8)).rstrip(".")
    page.with_.append(title)
    paras = "".join(_para(rng, page, markup=rng.random() < 0.4) for _ in range(rng.randint(5, 9)))
    quote = sentence(rng)
    page.with_.append(quote)
    comments = _boiler(rng, page, 2)
    body = (_cookie(rng, page) + _nav(rng, page) +
            f'<main><article><h1>{htmlmod.escape(title)}</h1><p class="byline">By Dana Reyes, 12 March 2024</p>'
            f"{paras}<blockquote>{htmlmod.escape(quote)}</blockquote></article>"
            + _sidebar(rng, page) +
            '<section id="comments" class="comments"><h3>Comments</h3>'
            + "".join(f'<div class="comment"><p>{htmlmod.escape(c)}</p></div>' for c in comments)
            + "</section></main>" + _footer(rng, page))
    head = '<meta name="author" content="Dana Reyes"><meta property="article:published_time" content="2024-03-12">'
    page.body = _doc(title, head, body).encode("utf-8")
    return page


def blog(rng: random.Random, i: int) -> Page:
    page = Page(f"/blog/{i}", b"", "text/html; charset=utf-8", "blog")
    title = sentence(rng, (4, 7)).rstrip(".")
    page.with_.append(title)
    parts = [f"<h1>{htmlmod.escape(title)}</h1>"]
    for _ in range(rng.randint(2, 4)):
        h = sentence(rng, (3, 6)).rstrip(".")
        page.with_.append(h)
        parts.append(f"<h2>{htmlmod.escape(h)}</h2>")
        parts.extend(_para(rng, page, markup=rng.random() < 0.3) for _ in range(rng.randint(1, 3)))
        items = [sentence(rng, (4, 8)) for _ in range(rng.randint(2, 5))]
        page.with_.extend(items)
        parts.append("<ul>" + "".join(f"<li>{htmlmod.escape(x)}</li>" for x in items) + "</ul>")
    (newsletter,) = _boiler(rng, page)
    body = (_nav(rng, page) + '<div class="content"><div class="post-body">' + "".join(parts) + "</div>"
            f'<div class="newsletter-signup"><p>{htmlmod.escape(newsletter)}</p><input type="email"></div>'
            '<div class="share-buttons"><a href="#">Share</a> <a href="#">Tweet</a></div></div>' + _footer(rng, page))
    page.body = _doc(title, "", body).encode("utf-8")
    return page


def docs(rng: random.Random, i: int) -> Page:
    page = Page(f"/docs/{i}", b"", "text/html; charset=utf-8", "docs")
    title = sentence(rng, (3, 5)).rstrip(".")
    page.with_.append(title)
    toc = _boiler(rng, page, 5)
    nav = '<nav class="docs-sidebar"><ul>' + "".join(
        f'<li><a href="/docs/p{j}">{htmlmod.escape(t)}</a></li>' for j, t in enumerate(toc)) + "</ul></nav>"
    rows = [(rng.choice(WORDS), rng.choice(WORDS) + " " + rng.choice(WORDS), str(rng.randint(1, 999)))
            for _ in range(rng.randint(3, 6))]
    for r in rows:
        page.with_.append(r[1])
    table = ("<table><thead><tr><th>Option</th><th>Meaning</th><th>Default</th></tr></thead><tbody>"
             + "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows) + "</tbody></table>")
    main = (f'<div role="main" class="document"><h1>{htmlmod.escape(title)}</h1>'
            + "".join(_para(rng, page) for _ in range(rng.randint(3, 6))) + table
            + "".join(_para(rng, page) for _ in range(rng.randint(1, 3))) + "</div>")
    page.body = _doc(title, "", nav + main + _footer(rng, page)).encode("utf-8")
    return page


def latin(rng: random.Random, i: int) -> Page:
    """windows-1252 bytes, the charset named only in the page's <meta>, not in the HTTP header."""
    page = Page(f"/latin/{i}", b"", "text/html", "cp1252")
    title = sentence(rng, (4, 6), accents=True).rstrip(".")
    page.with_.append(title)
    paras = "".join(_para(rng, page, accents=True) for _ in range(rng.randint(4, 7)))
    body = _nav(rng, page) + f"<article><h1>{htmlmod.escape(title)}</h1>{paras}</article>" + _footer(rng, page)
    page.body = _doc(title, "", body, charset="windows-1252").encode("cp1252")
    return page


def long_report(rng: random.Random, i: int) -> Page:
    """Long enough to span several fetch pages: paging must not drop or split passages."""
    page = Page(f"/report/{i}", b"", "text/html; charset=utf-8", "long")
    title = sentence(rng, (4, 6)).rstrip(".")
    page.with_.append(title)
    parts = []
    for _ in range(rng.randint(8, 12)):
        h = sentence(rng, (3, 5)).rstrip(".")
        page.with_.append(h)
        parts.append(f"<h2>{htmlmod.escape(h)}</h2>" + "".join(_para(rng, page) for _ in range(rng.randint(4, 7))))
    body = _nav(rng, page) + f"<article><h1>{htmlmod.escape(title)}</h1>{''.join(parts)}</article>" + _footer(rng, page)
    page.body = _doc(title, "", body).encode("utf-8")
    return page


def pdf(rng: random.Random, i: int) -> Page:
    from agentkit.testing.web import make_pdf

    page = Page(f"/pdf/{i}.pdf", b"", "application/pdf", "pdf")
    pages = []
    for _ in range(rng.randint(1, 3)):
        lines = [sentence(rng, (5, 9)) for _ in range(rng.randint(8, 20))]
        page.with_.extend(lines)
        pages.append(lines)
    page.body = make_pdf(pages, title=sentence(rng, (3, 5)).rstrip("."))
    return page


def divsoup(rng: random.Random, i: int) -> Page:
    """No semantic tags: text in nested <div>s with <br>, teasers and promos mixed into the body."""
    page = Page(f"/soup/{i}", b"", "text/html; charset=utf-8", "divsoup")
    title = sentence(rng, (4, 7)).rstrip(".")
    page.with_.append(title)
    blocks = []
    for j in range(rng.randint(5, 8)):
        a, b = sentence(rng), sentence(rng)
        page.with_.extend([a, b])
        blocks.append(f'<div class="txt">{htmlmod.escape(a)}<br>{htmlmod.escape(b)}</div>')
        if j == 2:
            (teaser,) = _boiler(rng, page)
            blocks.append(f'<div class="promo"><span>Read more:</span> <a href="/t/{j}">{htmlmod.escape(teaser)}</a></div>')
        if j == 4:
            (ad,) = _boiler(rng, page)
            blocks.append(f'<div class="ad-slot sponsored"><a href="/ad">{htmlmod.escape(ad)}</a></div>')
    body = (_nav(rng, page) + f'<div id="wrap"><div class="col"><div class="headline">{htmlmod.escape(title)}</div>'
            + "".join(blocks) + "</div>" + _sidebar(rng, page) + "</div>" + _footer(rng, page))
    page.body = _doc(title, "", body).encode("utf-8")
    return page


KINDS = {"news": news, "divsoup": divsoup, "blog": blog, "docs": docs, "cp1252": latin, "long": long_report, "pdf": pdf}


def generate(per_kind: int = 10, seed: int = 1) -> list[Page]:
    rng = random.Random(seed)
    return [make(rng, i) for make in KINDS.values() for i in range(per_kind)]


# -------------------------------------------------------------------------------- scoring
_WS = re.compile(r"\s+")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_MARK = re.compile(r"(\*\*|__|\*|`)")


def norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


def strip_markdown(text: str) -> str:
    return _MD_MARK.sub("", _MD_LINK.sub(r"\1", text))


def score(pages: list[Page], outputs: dict[str, str], markdown: bool) -> dict[str, Any]:
    tp = fn = fp = tn = 0
    for p in pages:
        out = outputs.get(p.path, "")
        out = norm(strip_markdown(out) if markdown else out)
        for s in p.with_:
            if norm(s) in out:
                tp += 1
            else:
                fn += 1
        for s in p.without:
            if norm(s) in out:
                fp += 1
            else:
                tn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "accuracy": round((tp + tn) / max(1, tp + tn + fp + fn), 4), "tp": tp, "fn": fn, "fp": fp, "tn": tn}


# -------------------------------------------------------------------------------- running
async def _fetch_all(tool: Any, base: str, pages: list[Page], concurrency: int) -> dict[str, str]:
    from agentkit.tools.base import ToolContext

    sem = asyncio.Semaphore(concurrency)
    outputs: dict[str, str] = {}

    async def one(p: Page) -> None:
        async with sem:
            ctx = ToolContext()
            url = base + p.path
            first = await tool({"url": url}, ctx)
            texts = [first.text]
            for n in range(2, (first.data or {}).get("pages", 1) + 1):
                texts.append((await tool({"url": url, "page": n}, ctx)).text)
            outputs[p.path] = "\n".join(texts)

    await asyncio.gather(*(one(p) for p in pages))
    return outputs


async def _run_async(per_kind: int, seed: int) -> dict[str, Any]:
    import trafilatura

    from agentkit.testing.web import LocalWebServer
    from agentkit.tools.fetch import FetchTool, extract_html, extract_pdf

    pages = generate(per_kind, seed)
    result: dict[str, Any] = {"pages": len(pages), "per_kind": per_kind, "seed": seed,
                              "passages_with": sum(len(p.with_) for p in pages),
                              "passages_without": sum(len(p.without) for p in pages)}
    with LocalWebServer() as web:
        for p in pages:
            web.add(p.path, p.body, p.content_type)
        tool = FetchTool(allow=["127.0.0.1"])
        try:
            t0 = time.perf_counter()
            seq = await _fetch_all(tool, web.base_url, pages, 1)
            t_seq = time.perf_counter() - t0
            t0 = time.perf_counter()
            await _fetch_all(tool, web.base_url, pages, 8)
            t_par = time.perf_counter() - t0
        finally:
            await tool.aclose()
        multi = sum(1 for p in pages if "Call fetch with page=2" in seq[p.path])

    t0 = time.perf_counter()
    for p in pages:
        if p.kind == "pdf":
            extract_pdf(p.body)
        else:
            extract_html(p.body, "http://127.0.0.1" + p.path)
    t_extract = time.perf_counter() - t0

    html_pages = [p for p in pages if p.kind != "pdf"]
    baseline = {p.path: trafilatura.extract(p.body) or "" for p in html_pages}

    result["quality"] = {
        "fetch (markdown-stripped)": score(pages, seq, markdown=True),
        "fetch (strict)": score(pages, seq, markdown=False),
        "fetch, HTML only (markdown-stripped)": score(html_pages, seq, markdown=True),
        "trafilatura.extract alone, HTML only": score(html_pages, baseline, markdown=False),
    }
    result["by_kind"] = {k: score([p for p in pages if p.kind == k], seq, markdown=True) for k in KINDS}
    result["speed"] = {
        "fetch pages/s (1 at a time)": round(len(pages) / t_seq, 1),
        "fetch pages/s (8 at a time)": round(len(pages) / t_par, 1),
        "extraction only pages/s": round(len(pages) / t_extract, 1),
    }
    result["documents_spanning_several_fetch_pages"] = multi
    return result


def run(per_kind: int = 10, seed: int = 1) -> dict[str, Any]:
    """Generate the pages, fetch and score them; returns the numbers as a dict."""
    return asyncio.run(_run_async(per_kind, seed))


def _table(res: dict[str, Any]) -> str:
    lines = [f"extraction benchmark: {res['pages']} generated pages, {res['passages_with']} 'with' and "
             f"{res['passages_without']} 'without' passages (seed {res['seed']})", ""]
    lines.append(f"{'':42} {'precision':>9} {'recall':>7} {'f1':>7}")
    for name, s in list(res["quality"].items()) + [(f"  kind={k}", v) for k, v in res["by_kind"].items()]:
        lines.append(f"{name:42} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:7.3f}")
    lines.append("")
    for name, v in res["speed"].items():
        lines.append(f"{name:42} {v:9.1f}")
    lines.append(f"{'documents spanning several fetch pages':42} {res['documents_spanning_several_fetch_pages']:9d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages-per-kind", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="bench/results/extraction.json", help="where to write the JSON results")
    args = ap.parse_args(argv)
    res = run(args.pages_per_kind, args.seed)
    print(_table(res))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
