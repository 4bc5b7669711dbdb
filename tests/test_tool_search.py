"""The search tool and its backends, offline: a fake DuckDuckGo HTML endpoint that ddgs really
parses, a fake SearXNG JSON API, and the JSON fixture backend."""

from __future__ import annotations

import asyncio
import html
import json
import threading
from pathlib import Path

import pytest
from ddgs.engines.duckduckgo import Duckduckgo
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from agentkit.errors import ConfigError
from agentkit.testing.web import LocalWebServer, Request, Response
from agentkit.tools.base import ToolContext
from agentkit.tools.search import SearchTool, split_questions
from agentkit.tools.search_backends import (DDGSBackend, FixtureBackend, SearchError, SearchHit, SearxngBackend,
                                            make_backend)
from tests.fixtures_slow import SlowServer


def ddg_page(hits: list[tuple[str, str, str]]) -> bytes:
    """An HTML page shaped like html.duckduckgo.com's result list."""
    items = "".join(
        '<div class="result results_links web-result"><div class="links_main links_deep result__body">'
        f'<h2 class="result__title"><a rel="nofollow" class="result__a" href="{html.escape(u)}">{html.escape(t)}</a></h2>'
        f'<a class="result__snippet" href="{html.escape(u)}">{html.escape(s)}</a></div></div>'
        for t, u, s in hits)
    return f"<html><body><div id='links' class='results'>{items}</div></body></html>".encode()


HITS = {
    "tidal locking": [("Tidal locking - Wikipedia", "https://en.wikipedia.org/wiki/Tidal_locking",
                       "Tidal locking between a pair of co-orbiting astronomical bodies occurs when..."),
                      ("Why the Moon shows one face", "https://example.org/moon-face",
                       "The Moon is tidally locked to Earth, so tidal forces...")],
    "laplace resonance": [("Orbital resonance", "https://example.org/resonance",
                           "Io, Europa and Ganymede are in a Laplace resonance of 1:2:4."),
                          ("Why the Moon shows one face", "https://example.org/moon-face",
                           "Also mentions the Laplace resonance of Jupiter's moons.")],
}


@pytest.fixture
def fake_ddg(web_server: LocalWebServer, monkeypatch: pytest.MonkeyPatch) -> LocalWebServer:
    """Point ddgs's DuckDuckGo engine at a local endpoint answering from ``HITS``."""

    def answer(req: Request) -> Response:
        query = req.form.get("q", [""])[0]
        return Response(200, ddg_page(HITS.get(query, [])), {"Content-Type": "text/html; charset=utf-8"})

    web_server.route("/html/", answer)
    monkeypatch.setattr(Duckduckgo, "search_url", web_server.url("/html/"))
    return web_server


async def test_ddgs_backend_parses_duckduckgo_html(fake_ddg: LocalWebServer) -> None:
    hits = await DDGSBackend(retries=0).search("tidal locking", 5)
    assert [h.url for h in hits] == ["https://en.wikipedia.org/wiki/Tidal_locking", "https://example.org/moon-face"]
    assert hits[0].title == "Tidal locking - Wikipedia" and hits[0].snippet.startswith("Tidal locking between")
    req = fake_ddg.requests[-1]
    assert req.method == "POST" and req.form["q"] == ["tidal locking"]


async def test_search_tool_formats_numbered_blocks(fake_ddg: LocalWebServer) -> None:
    ctx = ToolContext()
    tool = SearchTool(DDGSBackend(retries=0))
    obs = await tool({"questions": "tidal locking || laplace resonance"}, ctx)
    assert not obs.is_error
    text = obs.text
    assert "## Results for: tidal locking" in text and "## Results for: laplace resonance" in text
    assert "[webpage 1 begin]\nTitle: Tidal locking - Wikipedia\nURL: https://en.wikipedia.org/wiki/Tidal_locking\n" \
           "Snippet: Tidal locking between" in text
    assert "[webpage 3 begin]\nTitle: Orbital resonance" in text and "[webpage 3 end]" in text
    # the moon-face page appears under both queries but is listed once
    assert text.count("URL: https://example.org/moon-face") == 1
    assert [s.url for s in ctx.sources.all()] == ["https://en.wikipedia.org/wiki/Tidal_locking",
                                                  "https://example.org/moon-face", "https://example.org/resonance"]
    assert obs.data["queries"] == ["tidal locking", "laplace resonance"]


async def test_ddgs_retries_after_rate_limit_then_succeeds(web_server: LocalWebServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def flaky(req: Request) -> Response:
        calls.append(req)
        if len(calls) < 3:  # DuckDuckGo's 429 reaches us as ddgs's "No results found."
            return Response(429, b"slow down", {"Content-Type": "text/plain"})
        return Response(200, ddg_page(HITS["tidal locking"]), {"Content-Type": "text/html"})

    web_server.route("/html/", flaky)
    monkeypatch.setattr(Duckduckgo, "search_url", web_server.url("/html/"))
    hits = await DDGSBackend(retries=3, backoff=0.01).search("tidal locking", 5)
    assert len(calls) == 3 and len(hits) == 2


async def test_ddgs_persistent_rate_limit_is_a_clear_observation(web_server: LocalWebServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    web_server.route("/html/", lambda req: Response(429, b"", {"Content-Type": "text/plain"}))
    monkeypatch.setattr(Duckduckgo, "search_url", web_server.url("/html/"))
    tool = SearchTool(DDGSBackend(retries=2, backoff=0.01))
    obs = await tool({"questions": "anything"}, ToolContext())
    assert obs.is_error
    assert "No results from duckduckgo after 3 tries" in obs.text and "rate-limiting" in obs.text
    assert len([r for r in web_server.requests if r.path == "/html/"]) == 3


async def test_ddgs_timeout_is_retried_then_reported(web_server: LocalWebServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(req: Request) -> Response:
        release.wait(5)
        return Response(200, ddg_page([]), {"Content-Type": "text/html"})

    web_server.route("/html/", hang)
    monkeypatch.setattr(Duckduckgo, "search_url", web_server.url("/html/"))
    try:
        with pytest.raises(SearchError, match="timed out 2 times"):
            await DDGSBackend(retries=1, backoff=0.01, timeout=1).search("slow query", 5)
    finally:
        release.set()


class _Injected(DDGSBackend):
    """Raises ddgs's own exception types from inside the backend before answering for real."""

    def __init__(self, errors: list[Exception], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.errors = errors

    def _search_sync(self, query: str, max_results: int) -> list[dict]:
        if self.errors:
            raise self.errors.pop(0)
        return super()._search_sync(query, max_results)


@pytest.mark.parametrize("error", [TimeoutException("timed out"), RatelimitException("429"),
                                   DDGSException("No results found.")])
async def test_each_ddgs_exception_type_is_retried(fake_ddg: LocalWebServer, error: Exception) -> None:
    backend = _Injected([error, error], retries=2, backoff=0.01)
    hits = await backend.search("laplace resonance", 5)
    assert [h.url for h in hits][0] == "https://example.org/resonance"


async def test_unexpected_ddgs_failure_message() -> None:
    backend = _Injected([DDGSException("boom")] * 2, retries=1, backoff=0.01)
    with pytest.raises(SearchError, match="failed 2 times: boom"):
        await backend.search("x", 5)


# ------------------------------------------------------------------------------------- SearXNG
@pytest.fixture
def fake_searxng(web_server: LocalWebServer) -> LocalWebServer:
    def answer(req: Request) -> Response:
        if req.query.get("format") != ["json"]:
            return Response(403, b"Forbidden", {"Content-Type": "text/plain"})
        q = req.query["q"][0]
        results = [{"title": t, "url": u, "content": s, "engine": "fake"} for t, u, s in HITS.get(q, [])]
        return Response(200, json.dumps({"query": q, "results": results}).encode(),
                        {"Content-Type": "application/json"})

    web_server.route("/search", answer)
    return web_server


async def test_searxng_backend(fake_searxng: LocalWebServer) -> None:
    backend = SearxngBackend(fake_searxng.base_url)
    hits = await backend.search("laplace resonance", 5)
    assert hits[0] == SearchHit(title="Orbital resonance", url="https://example.org/resonance",
                                snippet="Io, Europa and Ganymede are in a Laplace resonance of 1:2:4.")
    req = fake_searxng.requests[-1]
    assert req.query["format"] == ["json"] and req.query["categories"] == ["general"]


async def test_searxng_without_json_format_says_how_to_fix(web_server: LocalWebServer) -> None:
    web_server.route("/search", lambda req: Response(403, b"Forbidden", {"Content-Type": "text/plain"}))
    with pytest.raises(SearchError, match="enable `json`"):
        await SearxngBackend(web_server.base_url).search("x", 5)


async def test_searxng_unreachable() -> None:
    with pytest.raises(SearchError, match="Could not reach SearXNG"):
        await SearxngBackend("http://127.0.0.1:9").search("x", 5)


async def test_results_are_cached_per_run(fake_searxng: LocalWebServer) -> None:
    tool = SearchTool(SearxngBackend(fake_searxng.base_url))
    ctx = ToolContext()
    first = await tool({"questions": "tidal locking"}, ctx)
    second = await tool({"questions": "tidal locking||laplace resonance"}, ctx)
    assert len([r for r in fake_searxng.requests if r.path == "/search"]) == 2  # one per distinct query
    assert "[webpage 1 begin]" in first.text and "[webpage 1 begin]" in second.text  # same numbers
    assert "[webpage 3 begin]\nTitle: Orbital resonance" in second.text
    other_run = ToolContext()
    await tool({"questions": "tidal locking"}, other_run)
    assert len([r for r in fake_searxng.requests if r.path == "/search"]) == 3  # new run, new cache


async def test_searxng_trickling_answer_stops_at_its_total_timeout(slow_server: SlowServer) -> None:
    """One byte every 0.2 s passes httpx's per-read timeout forever; the backend's timeout is total."""
    backend = SearxngBackend(slow_server.url("/trickle"), timeout=1)
    with pytest.raises(SearchError, match=r"did not answer within 1s"):
        await asyncio.wait_for(backend.search("x", 5), 15)  # the outer limit only stops a hang


async def test_a_hanging_backend_is_a_failed_query_within_the_deadline(slow_server: SlowServer) -> None:
    assert SearchTool().deadline == 60.0
    tool = SearchTool(SearxngBackend(slow_server.url("/hang")), deadline=1)
    ctx = ToolContext()
    obs = await asyncio.wait_for(tool({"questions": "tides||moons"}, ctx), 10)
    assert obs.is_error and obs.text.count("(search failed: the searxng search backend did not answer within 1s") == 2
    await asyncio.wait_for(tool({"questions": "tides"}, ctx), 10)
    assert slow_server.paths.count("/hang/search?q=tides&format=json&categories=general") == 2  # not cached


async def test_one_hanging_query_does_not_hide_the_others() -> None:
    class Stuck:
        name = "stuck"

        async def search(self, query: str, max_results: int) -> list[SearchHit]:
            if query == "slow":
                await asyncio.Event().wait()
            return [SearchHit(title="ok", url="https://example.org/ok")]

    obs = await asyncio.wait_for(SearchTool(Stuck(), deadline=0.5)({"questions": "fast||slow"}, ToolContext()), 10)
    assert not obs.is_error and "[webpage 1 begin]" in obs.text
    assert "(search failed: the stuck search backend did not answer within 0.5s" in obs.text


# ------------------------------------------------------------------------------------- fixture
@pytest.fixture
def fixture_file(tmp_path: Path) -> Path:
    path = tmp_path / "search.json"
    path.write_text(json.dumps({
        "capital of France": [{"title": "Paris", "url": "https://example.org/paris", "snippet": "Paris is the capital."}],
        "*": [{"title": "Fallback", "url": "https://example.org/any", "snippet": "Anything else."}],
    }))
    return path


async def test_fixture_backend_exact_folded_and_fallback(fixture_file: Path) -> None:
    backend = FixtureBackend(fixture_file)
    assert (await backend.search("capital of France", 5))[0].title == "Paris"
    assert (await backend.search("  Capital   of france ", 5))[0].title == "Paris"
    assert (await backend.search("unknown", 5))[0].url == "https://example.org/any"


async def test_backend_from_run_settings(fixture_file: Path) -> None:
    ctx = ToolContext(settings={"search_backend": f"fixture:{fixture_file}"})
    obs = await SearchTool()({"questions": "capital of France"}, ctx)
    assert "[webpage 1 begin]\nTitle: Paris\nURL: https://example.org/paris" in obs.text
    assert obs.data["backend"] == "fixture"


def test_make_backend_specs(fixture_file: Path) -> None:
    ddgs = make_backend("ddgs", engines="duckduckgo,brave")
    assert isinstance(ddgs, DDGSBackend) and ddgs.engines == "duckduckgo,brave"
    assert make_backend("ddgs").engines == "duckduckgo"  # DuckDuckGo only, not ddgs's "auto" fan-out
    assert isinstance(make_backend("searxng", searxng_url="http://127.0.0.1:8888"), SearxngBackend)
    assert isinstance(make_backend(f"fixture:{fixture_file}"), FixtureBackend)
    with pytest.raises(ConfigError, match=r"searxng_url=URL"):
        make_backend("searxng")
    with pytest.raises(ConfigError, match="unknown search backend"):
        make_backend("bing")
    with pytest.raises(ConfigError, match="not found"):
        make_backend("fixture:/nonexistent/file.json")


# ------------------------------------------------------------------------------------- the tool
class _Gate:
    """A backend that answers only once ``n`` queries are in flight together."""

    name = "gate"

    def __init__(self, n: int) -> None:
        self.n, self.inflight, self.peak = n, 0, 0
        self.all_in = asyncio.Event()

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        if self.inflight >= self.n:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), 10)
        self.inflight -= 1
        return [SearchHit(title=query, url=f"https://example.org/{query.replace(' ', '-')}", snippet=query)]


async def test_queries_run_concurrently_and_are_limited_to_five() -> None:
    gate = _Gate(5)
    obs = await SearchTool(gate)({"questions": "a||b||c||d||e||f||g"}, ToolContext())
    assert gate.peak == 5
    assert obs.data["queries"] == ["a", "b", "c", "d", "e"]
    assert "skipped: f || g" in obs.text


def test_split_questions() -> None:
    assert split_questions(" a ||b|| a||  ||c  d ") == (["a", "b", "c d"], [])
    assert split_questions("") == ([], [])


async def test_empty_questions_is_an_error() -> None:
    obs = await SearchTool(FixtureBackend(data={}))({"questions": " || "}, ToolContext())
    assert obs.is_error and "at least one search query" in obs.text


async def test_one_failing_query_does_not_hide_the_others(fixture_file: Path) -> None:
    class Half:
        name = "half"

        async def search(self, query: str, max_results: int) -> list[SearchHit]:
            if query == "bad":
                raise SearchError("backend down for this one")
            return [SearchHit(title="ok", url="https://example.org/ok")]

    obs = await SearchTool(Half())({"questions": "good||bad"}, ToolContext())
    assert not obs.is_error
    assert "(search failed: backend down for this one)" in obs.text and "[webpage 1 begin]" in obs.text


def test_schema_is_the_fixed_interface() -> None:
    tool = SearchTool()
    assert tool.name == "search"
    assert tool.parameters["required"] == ["questions"]
    assert list(tool.parameters["properties"]) == ["questions"]
    assert "||" in tool.parameters["properties"]["questions"]["description"]
