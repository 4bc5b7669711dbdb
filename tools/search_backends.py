"""Search backends behind one small interface: ddgs (DuckDuckGo), SearXNG, a JSON fixture, a local
folder of documents (``local:DIR``), and several of these at once (``local:DIR,duckduckgo``).

Each backend answers one query with a list of ``SearchHit``. Failures a retry cannot fix raise
``SearchError`` with a message the search tool passes on to the model. A backend may also have
``async prepare()``, which the search tool awaits before the query's deadline starts (the local
backend builds or refreshes its index there).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel

from agentkit.errors import ConfigError, ToolError

__all__ = ["DDGSBackend", "FixtureBackend", "LocalBackend", "MultiBackend", "SearchBackend", "SearchError",
           "SearchHit", "SearxngBackend", "local_roots", "make_backend", "split_specs"]


class SearchHit(BaseModel):
    title: str = ""
    url: str
    snippet: str = ""


class SearchError(ToolError):
    """The search backend failed for one query (after its retries)."""


@runtime_checkable
class SearchBackend(Protocol):
    name: str

    async def search(self, query: str, max_results: int) -> list[SearchHit]: ...


class DDGSBackend:
    """Search through the ``ddgs`` package, by default on DuckDuckGo only.

    ddgs's ``auto`` fans a query out to about seven engines; we ask for the engines named in
    ``engines`` (comma-separated, default ``duckduckgo``). ddgs swallows each engine's errors and
    raises ``DDGSException`` ("No results found." — also what an HTTP 429 looks like) or
    ``TimeoutException`` at the end, so both are retried with exponential backoff and jitter.
    """

    name = "ddgs"

    def __init__(self, engines: str = "duckduckgo", *, region: str = "us-en", safesearch: str = "moderate",
                 timeout: int = 10, retries: int = 3, backoff: float = 1.5, proxy: str | None = None) -> None:
        self.engines = engines
        self.region = region
        self.safesearch = safesearch
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.proxy = proxy

    def _search_sync(self, query: str, max_results: int) -> list[dict[str, Any]]:
        from ddgs import DDGS

        return DDGS(proxy=self.proxy, timeout=self.timeout).text(
            query, region=self.region, safesearch=self.safesearch, max_results=max_results, backend=self.engines)

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        from ddgs.exceptions import DDGSException, TimeoutException

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * (2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.75 + random.random() / 2))
            try:
                rows = await asyncio.to_thread(self._search_sync, query, max_results)
            except (TimeoutException, DDGSException) as e:  # TimeoutException is a DDGSException
                last = e
                continue
            return [SearchHit(title=r.get("title", ""), url=r.get("href", ""), snippet=r.get("body", ""))
                    for r in rows if r.get("href")]
        assert last is not None
        tries = self.retries + 1
        if isinstance(last, TimeoutException) or "timed out" in str(last).lower():
            raise SearchError(f"The search engine ({self.engines}) timed out {tries} times; "
                              "try again later or rephrase the query.")
        if "No results found" in str(last):
            raise SearchError(f"No results from {self.engines} after {tries} tries (nothing matched, or the "
                              "engine is rate-limiting); try a different or shorter query.")
        raise SearchError(f"The search engine ({self.engines}) failed {tries} times: {last}; try again later.")


class SearxngBackend:
    """A SearXNG instance's JSON API (``/search?format=json``); the instance must enable that format.

    ``timeout`` bounds the whole request (httpx's own timeout is per read: a trickling answer
    would pass it forever).
    """

    name = "searxng"

    def __init__(self, url: str, *, timeout: float = 15.0, categories: str = "general",
                 language: str | None = None, client: httpx.AsyncClient | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"searxng_url=URL must be an http(s) URL, got {url!r}.")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.categories = categories
        self.language = language
        self._client = client

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        params = {"q": query, "format": "json", "categories": self.categories}
        if self.language:
            params["language"] = self.language
        endpoint = self.url if self.url.endswith("/search") else self.url + "/search"
        try:
            async with asyncio.timeout(self.timeout) as limit:
                if self._client is not None:
                    resp = await self._client.get(endpoint, params=params, timeout=self.timeout)
                else:
                    async with httpx.AsyncClient(trust_env=False, timeout=self.timeout) as client:
                        resp = await client.get(endpoint, params=params)
        except TimeoutError:
            if not limit.expired():
                raise
            raise SearchError(f"SearXNG at {self.url} did not answer within {self.timeout:g}s; "
                              "try again later.") from None
        except httpx.HTTPError as e:
            raise SearchError(f"Could not reach SearXNG at {self.url}: {type(e).__name__}; "
                              "check searxng_url=URL.") from e
        if resp.status_code == 403:
            raise SearchError(f"SearXNG at {self.url} refused the JSON API (HTTP 403); enable `json` in "
                              "search.formats of its settings.yml.")
        if resp.status_code >= 400:
            raise SearchError(f"SearXNG at {self.url} answered HTTP {resp.status_code}; try again later.")
        try:
            results = resp.json().get("results", [])
        except ValueError as e:
            raise SearchError(f"SearXNG at {self.url} did not return JSON; check searxng_url=URL.") from e
        return [SearchHit(title=r.get("title") or "", url=r["url"], snippet=r.get("content") or "")
                for r in results if isinstance(r, dict) and r.get("url")][:max_results]


class FixtureBackend:
    """Results from a JSON file mapping each query to ``[{title, url, snippet}, ...]``.

    ``"*"`` answers any query not listed. Matching is exact first, then case- and
    whitespace-insensitive. For tests, demos and offline examples.
    """

    name = "fixture"

    def __init__(self, path: str | Path | None = None, *, data: dict[str, list[dict[str, str]]] | None = None) -> None:
        if data is None:
            if path is None:
                raise ConfigError("fixture search backend needs a file: search_backend='fixture:PATH'.")
            try:
                data = json.loads(Path(path).read_text(encoding="utf-8"))
            except FileNotFoundError as e:
                raise ConfigError(f"search fixture file not found: {path}.") from e
            except ValueError as e:
                raise ConfigError(f"search fixture file {path} is not valid JSON: {e}.") from e
        if not isinstance(data, dict):
            raise ConfigError("a search fixture file must hold a JSON object mapping queries to result lists.")
        self.path = str(path) if path else None
        self.data = {k: [SearchHit(**h) for h in v] for k, v in data.items()}
        self._folded = {" ".join(k.lower().split()): v for k, v in self.data.items()}

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        hits = self.data.get(query)
        if hits is None:
            hits = self._folded.get(" ".join(query.lower().split()))
        if hits is None:
            hits = self.data.get("*", [])
        return list(hits[:max_results])


class LocalBackend:
    """Passages of the documents in a folder, from its SQLite FTS5 index (``agentkit.tools.local_index``).

    Each hit's URL is ``file:///abs/path#pN`` (document and passage); the fetch tool opens it when
    it is given this backend's ``roots``. ``prepare`` builds or refreshes the index, once per backend.
    """

    name = "local"

    def __init__(self, folder: str | Path, *, index_path: str | Path | None = None) -> None:
        from agentkit.tools.local_index import LocalIndex

        self.index = LocalIndex(folder, path=index_path)
        self.roots = [self.index.root]
        self.report: Any = None  # the RefreshReport of prepare()
        self._ready: asyncio.Lock | None = None

    async def prepare(self) -> None:
        if self.report is not None:
            return
        if self._ready is None:
            self._ready = asyncio.Lock()
        async with self._ready:
            if self.report is None:
                try:
                    self.report = await asyncio.to_thread(self.index.refresh)
                except (sqlite3.Error, OSError) as e:
                    raise SearchError(f"could not index {self.index.root} in {self.index.path}: {e}") from e

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        await self.prepare()
        try:
            passages = await asyncio.to_thread(self.index.search, query, max_results)
        except sqlite3.Error as e:
            raise SearchError(f"the index of {self.index.root} failed: {e}; rebuild it with "
                              f"`agentkit index --rebuild {self.index.root}`") from e
        return [SearchHit(title=p.title if p.of < 2 else f"{p.title} (part {p.n} of {p.of})", url=p.url,
                          snippet=p.snippet) for p in passages]


class MultiBackend:
    """Several backends asked at once; their hits interleaved (best of each first), each URL once.

    A backend that fails or takes longer than ``timeout`` is left out; only when all fail does the
    query fail.
    """

    def __init__(self, backends: list[SearchBackend], *, timeout: float = 45.0) -> None:
        self.backends = backends
        self.timeout = timeout
        self.name = "+".join(b.name for b in backends)
        self.roots = [r for b in backends for r in getattr(b, "roots", [])]

    async def prepare(self) -> None:
        await asyncio.gather(*(b.prepare() for b in self.backends if hasattr(b, "prepare")))

    async def _one(self, backend: SearchBackend, query: str, max_results: int) -> list[SearchHit]:
        try:
            async with asyncio.timeout(self.timeout) as limit:
                return await backend.search(query, max_results)
        except TimeoutError:
            if not limit.expired():
                raise
            raise SearchError(f"the {backend.name} backend did not answer within {self.timeout:g}s") from None

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        outcomes = await asyncio.gather(*(self._one(b, query, max_results) for b in self.backends),
                                        return_exceptions=True)
        lists: list[list[SearchHit]] = []
        errors: list[str] = []
        for backend, outcome in zip(self.backends, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, (ToolError, OSError, ValueError)):
                    raise outcome
                errors.append(f"{backend.name}: {outcome}")
            else:
                lists.append(outcome)
        if not lists:
            raise SearchError("every search backend failed (" + "; ".join(errors) + ")")
        merged: list[SearchHit] = []
        seen: set[str] = set()
        for rank in range(max((len(x) for x in lists), default=0)):
            for hits in lists:
                if rank < len(hits) and hits[rank].url not in seen:
                    seen.add(hits[rank].url)
                    merged.append(hits[rank])
        return merged[:max_results]


# A comma starts a new backend only where one of these follows (a path or URL may hold commas).
_NEXT_SPEC = re.compile(r",\s*(?=(?:ddgs|duckduckgo|searxng)(?:[:,]|$)|(?:fixture|local):)")


def split_specs(spec: str) -> list[str]:
    """``local:DIR,duckduckgo`` -> ``["local:DIR", "duckduckgo"]`` (repeats dropped)."""
    return list(dict.fromkeys(p.strip() for p in _NEXT_SPEC.split(spec or "") if p.strip()))


def local_roots(spec: str | None) -> list[str]:
    """The folders of the ``local:DIR`` parts of a backend spelling (what fetch may open)."""
    return [p.split(":", 1)[1] for p in split_specs(spec or "") if p.startswith("local:")]


def make_backend(spec: str = "ddgs", *, searxng_url: str | None = None,
                 engines: str | None = None) -> SearchBackend:
    """Build a backend from its CLI spelling: ``ddgs``/``duckduckgo``, ``searxng`` (with ``searxng_url``)
    or ``searxng:URL``, ``fixture:PATH``, ``local:DIR``, or several joined by commas."""
    specs = split_specs((spec or "ddgs").strip()) or ["ddgs"]
    if len(specs) > 1:
        return MultiBackend([make_backend(s, searxng_url=searxng_url, engines=engines) for s in specs])
    spec = specs[0]
    if spec in ("ddgs", "duckduckgo"):
        return DDGSBackend(engines=engines or "duckduckgo")
    if spec == "searxng":
        if not searxng_url:
            raise ConfigError("search_backend='searxng' needs searxng_url=URL.")
        return SearxngBackend(searxng_url)
    if spec.startswith("searxng:"):
        return SearxngBackend(spec.split(":", 1)[1])
    if spec.startswith("fixture:"):
        return FixtureBackend(spec.split(":", 1)[1])
    if spec.startswith("local:"):
        folder = spec.split(":", 1)[1]
        if not folder:
            raise ConfigError("local search backend needs a folder: search_backend='local:DIR'.")
        return LocalBackend(folder)
    raise ConfigError(f"unknown search backend {spec!r}; use ddgs, searxng:URL, fixture:PATH, local:DIR "
                      "or several joined by commas.")
