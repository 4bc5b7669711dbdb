"""The ``search`` tool in the DeepSeek search-agent shape.

One ``questions`` string holds up to five queries separated by ``||``; they run concurrently.
Results come back as ``[webpage N begin]`` … ``[webpage N end]`` blocks whose N is the run's
source number (``ctx.sources``), so the final answer's ``[citation:N]`` resolve to URLs. Results
are cached per run: asking the same query twice costs nothing and returns the same numbers.
Each query has a total ``deadline``: a backend that hangs becomes a failed query, not a hung run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentkit.errors import ToolError
from agentkit.tools.base import Observation, ToolContext
from agentkit.tools.fetch import neutralize_markers
from agentkit.tools.search_backends import SearchBackend, SearchError, SearchHit, make_backend

__all__ = ["SearchTool", "split_questions"]

MAX_QUERIES = 5


def split_questions(questions: str, limit: int = MAX_QUERIES) -> tuple[list[str], list[str]]:
    """Split on ``||``, strip, drop empties and repeats; returns (kept, dropped beyond ``limit``)."""
    seen: list[str] = []
    for q in questions.split("||"):
        q = " ".join(q.split())
        if q and q not in seen:
            seen.append(q)
    return seen[:limit], seen[limit:]


class SearchTool:
    """Web search returning numbered, citable result blocks."""

    name = "search"
    description = (
        "Search the web. Returns numbered results ([webpage N begin] ... [webpage N end]) with title, "
        "URL and snippet; cite a result in your answer as [citation:N]. Open a result with the fetch "
        "tool to read it in full. Do not repeat a query you have already searched."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "questions": {
                "type": "string",
                "description": (
                    "Up to 5 search queries, separated by \"||\"; they run in parallel. For example: "
                    "\"deep learning||neural networks||transformer architecture\". Write short keyword "
                    "queries, each about one thing."),
            },
        },
        "required": ["questions"],
    }
    parallel_safe = True

    def __init__(self, backend: SearchBackend | None = None, *, max_results: int = 5,
                 snippet_chars: int = 600, deadline: float | None = 60.0) -> None:
        self.backend = backend
        self.deadline = deadline  # s per query, retries included (the queries run concurrently)
        self.max_results = max_results
        self.snippet_chars = snippet_chars

    def _backend(self, ctx: ToolContext) -> SearchBackend:
        """The configured backend, else one built from the run settings (cached in ``ctx.data``)."""
        if self.backend is not None:
            return self.backend
        backend = ctx.data.get("search_backend")
        if backend is None:
            s = ctx.settings
            backend = make_backend(s.get("search_backend") or "ddgs", searxng_url=s.get("searxng_url"),
                                   engines=s.get("search_engines"))
            ctx.data["search_backend"] = backend
        return backend

    async def _one(self, backend: SearchBackend, query: str, ctx: ToolContext) -> list[SearchHit]:
        cache: dict[tuple[str, str], list[SearchHit]] = ctx.data.setdefault("search_cache", {})
        key = (f"{backend.name}:{id(backend)}", query)
        if key not in cache:
            try:
                async with asyncio.timeout(self.deadline) as limit:
                    hits = await backend.search(query, self.max_results)
            except TimeoutError:
                if not limit.expired():
                    raise
                raise SearchError(f"the {backend.name} search backend did not answer within {self.deadline:g}s; "
                                  "try again later or rephrase the query") from None
            cache[key] = hits
        return cache[key]

    def _snippet(self, text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= self.snippet_chars else text[: self.snippet_chars].rstrip() + "…"

    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        raw = args.get("questions")
        if isinstance(raw, list):  # be forgiving: a model may send a JSON list
            raw = "||".join(str(x) for x in raw)
        queries, dropped = split_questions(str(raw or ""))
        if not queries:
            return Observation(text="Give at least one search query in `questions` (separate several with ||).",
                               is_error=True)
        backend = self._backend(ctx)
        prepare = getattr(backend, "prepare", None)
        if prepare is not None:  # e.g. the local index is built: outside each query's deadline
            try:
                await prepare()
            except ToolError as e:
                return Observation(text=f"The search backend is not available: {e}", is_error=True)
        outcomes = await asyncio.gather(*(self._one(backend, q, ctx) for q in queries), return_exceptions=True)

        blocks: list[str] = []
        shown: set[str] = set()
        records: list[dict[str, Any]] = []
        failures = 0
        for query, outcome in zip(queries, outcomes):
            blocks.append(f"## Results for: {query}")
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, (ToolError, OSError, ValueError)):
                    raise outcome
                failures += 1
                blocks.append(f"(search failed: {outcome})")
                continue
            fresh = [h for h in outcome if h.url not in shown]
            if not outcome:
                blocks.append("(no results; try other words)")
            elif not fresh:
                blocks.append("(only results already listed above)")
            for hit in fresh:
                shown.add(hit.url)
                n = ctx.sources.add(hit.url, hit.title)
                records.append({"n": n, "url": hit.url, "title": hit.title, "query": query})
                blocks.append(f"[webpage {n} begin]\nTitle: {hit.title}\nURL: {hit.url}\n"
                              f"Snippet: {self._snippet(hit.snippet)}\n[webpage {n} end]")
        if dropped:
            blocks.append(f"(Only the first {MAX_QUERIES} queries were searched; skipped: "
                          + " || ".join(dropped) + ")")
        data = {"queries": queries, "results": records, "backend": backend.name}
        return Observation(text=neutralize_markers("\n\n".join(blocks)), is_error=failures == len(queries), data=data)
