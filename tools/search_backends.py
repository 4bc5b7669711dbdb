"""Web search backends behind one small interface: ddgs (DuckDuckGo), SearXNG, and a JSON fixture.

Each backend answers one query with a list of ``SearchHit``. Failures a retry cannot fix raise
``SearchError`` with a message the search tool passes on to the model.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel

from agentkit.errors import ConfigError, ToolError

__all__ = ["DDGSBackend", "FixtureBackend", "SearchBackend", "SearchError", "SearchHit", "SearxngBackend",
           "make_backend"]


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
            raise ConfigError(f"--searxng-url must be an http(s) URL, got {url!r}.")
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
                              "check --searxng-url.") from e
        if resp.status_code == 403:
            raise SearchError(f"SearXNG at {self.url} refused the JSON API (HTTP 403); enable `json` in "
                              "search.formats of its settings.yml.")
        if resp.status_code >= 400:
            raise SearchError(f"SearXNG at {self.url} answered HTTP {resp.status_code}; try again later.")
        try:
            results = resp.json().get("results", [])
        except ValueError as e:
            raise SearchError(f"SearXNG at {self.url} did not return JSON; check --searxng-url.") from e
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
                raise ConfigError("fixture search backend needs a file: --search-backend fixture:PATH.")
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


def make_backend(spec: str = "ddgs", *, searxng_url: str | None = None,
                 engines: str | None = None) -> SearchBackend:
    """Build a backend from its CLI spelling: ``ddgs``, ``searxng`` or ``fixture:PATH``."""
    spec = (spec or "ddgs").strip()
    if spec in ("ddgs", "duckduckgo"):
        return DDGSBackend(engines=engines or "duckduckgo")
    if spec == "searxng":
        if not searxng_url:
            raise ConfigError("--search-backend searxng needs --searxng-url URL.")
        return SearxngBackend(searxng_url)
    if spec.startswith("fixture:"):
        return FixtureBackend(spec.split(":", 1)[1])
    raise ConfigError(f"unknown search backend {spec!r}; use ddgs, searxng or fixture:PATH.")
