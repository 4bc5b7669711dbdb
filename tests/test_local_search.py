"""Research over local documents (``--search-backend local:DIR``): real files in temporary folders,
a real SQLite FTS5 index under a temporary ``XDG_CACHE_HOME``, the search and fetch tools, several
backends at once, ``agentkit index`` and an offline ``agentkit research`` with a replay model over
the small corpus in tests/data/corpus."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from agentkit.errors import ConfigError
from agentkit.testing.web import make_pdf
from agentkit.tools import search_tools
from agentkit.tools.base import ToolContext
from agentkit.tools.fetch import FetchTool
from agentkit.tools.local_index import LocalIndex, cache_dir, default_index_path, fts_query
from agentkit.tools.search import SearchTool
from agentkit.tools.search_backends import (FixtureBackend, LocalBackend, MultiBackend, SearchError, SearchHit,
                                            local_roots, make_backend, split_specs)
from tests.fixtures_cli import cli_env, run_cli, write_jsonl

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"


@pytest.fixture(autouse=True)
def xdg_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def _para(topic: str, n: int = 40) -> str:
    return " ".join(f"{topic} filler{i % 7}" for i in range(n)) + "."


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "tides.md").write_text("# Tide clocks\n\nA float in a stilling well turns the hand of a tide clock.\n")
    (d / "sub" / "fruit.txt").write_text("Bananas\n\nBananas are yellow and rich in potassium.\n")
    (d / "lamp.html").write_text("<html><head><title>Harbor lamps</title></head><body><article><h1>Harbor lamps</h1>"
                                 "<p>The harbor lighthouse was first lit in 1890 and guided ships past the reef.</p>"
                                 "</article></body></html>")
    (d / "report.pdf").write_bytes(make_pdf([["Quarry report", "The granite quarry shipped 900 tonnes in 1911."]],
                                            title="Quarry report"))
    # a long document: the word "zeppelin" only in its last paragraph
    (d / "long.md").write_text("# Long notes\n\n" + "\n\n".join(_para("meadow") for _ in range(12))
                               + "\n\nThe zeppelin hangar stood at the far end of the meadow.\n")
    (d / "ignored.csv").write_text("zeppelin,tide\n")
    (d / ".hidden").mkdir()
    (d / ".hidden" / "secret.md").write_text("zeppelin secret\n")
    return d


# ---------------------------------------------------------------------------------------- the index
def test_index_location_follows_xdg_and_is_keyed_by_the_folder(docs: Path, xdg_cache: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir() == xdg_cache / "agentkit" / "index"
    monkeypatch.chdir(docs.parent)
    assert default_index_path("docs") == default_index_path(str(docs) + "/") == default_index_path(docs / "sub" / "..")
    assert default_index_path(docs) != default_index_path(docs / "sub")
    with LocalIndex(docs) as ix:
        report = ix.refresh()
    assert Path(report.index).parent == xdg_cache / "agentkit" / "index" and Path(report.index).suffix == ".sqlite"
    assert Path(report.index).is_file() and report.size_bytes > 0
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(docs.parent / "home"))
    assert cache_dir() == docs.parent / "home" / ".cache" / "agentkit" / "index"


def test_index_reads_each_kind_and_skips_hidden_and_other_files(docs: Path) -> None:
    with LocalIndex(docs) as ix:
        report = ix.refresh()
        assert sorted(report.read) == ["lamp.html", "long.md", "report.pdf", "sub/fruit.txt", "tides.md"]
        assert report.files == 5 and not report.failed
        (hit,) = ix.search("granite quarry", 1)  # the PDF, through pypdf
        assert hit.path == str(docs / "report.pdf") and hit.title == "Quarry report" and "900 tonnes" in hit.snippet
        (hit,) = ix.search("lighthouse reef", 1)  # the HTML page, through trafilatura
        assert hit.title == "Harbor lamps" and hit.url == (docs / "lamp.html").as_uri() + "#p1"
        assert ix.search("potassium", 1)[0].title == "Bananas"  # a text file's heading line
        assert all(".hidden" not in h.path for h in ix.search("zeppelin secret", 10))


def test_documents_are_cut_into_passages_and_search_returns_the_matching_one(docs: Path) -> None:
    with LocalIndex(docs, passage_chars=400) as ix:
        ix.refresh()
        (hit,) = ix.search("zeppelin hangar", 1)
        assert hit.path == str(docs / "long.md") and hit.of > 3 and hit.n == hit.of  # the last passage
        assert hit.url == f"{(docs / 'long.md').as_uri()}#p{hit.n}"
        assert "zeppelin hangar" in hit.snippet and len(hit.snippet) < 600
        meadow = ix.search("meadow", 10)
        assert len({h.n for h in meadow if h.path.endswith("long.md")}) > 3  # passages, not one row per file


def test_refresh_is_incremental(docs: Path) -> None:
    with LocalIndex(docs) as ix:
        assert len(ix.refresh().read) == 5
        again = ix.refresh()
        assert again.read == [] and again.removed == [] and again.files == 5

        tides = docs / "tides.md"
        tides.write_text("# Tide clocks\n\nThe pendulum of a quayside tide clock swings slowly.\n")
        os.utime(tides, ns=(tides.stat().st_atime_ns, tides.stat().st_mtime_ns + 10**9))
        changed = ix.refresh()
        assert changed.read == ["tides.md"] and changed.removed == []
        assert ix.search("pendulum", 5)[0].path == str(tides)
        assert not [h for h in ix.search("stilling well", 5) if h.path == str(tides)]  # old text gone

        (docs / "sub" / "fruit.txt").unlink()
        (docs / "new.txt").write_text("Apricots are orange.\n")
        later = ix.refresh()
        assert later.removed == ["sub/fruit.txt"] and later.read == ["new.txt"] and later.files == 5
        assert ix.search("bananas potassium", 5) == []
        assert ix.search("apricots", 5)[0].path == str(docs / "new.txt")


def test_a_second_index_object_and_a_damaged_cache_file(docs: Path) -> None:
    with LocalIndex(docs) as ix:
        ix.refresh()
    with LocalIndex(docs) as ix:  # a new process would see the same index: nothing to read
        assert ix.refresh().read == []
    default_index_path(docs).write_bytes(b"this is not a database" * 100)
    with LocalIndex(docs) as ix:  # rebuilt from scratch
        assert len(ix.refresh().read) == 5 and ix.search("tide clock", 1)


def test_runs_starting_together_read_the_folder_once(docs: Path) -> None:
    """Batch workers that each open the index of a new folder at once: one reads it, the rest wait."""
    from concurrent.futures import ThreadPoolExecutor

    indexes = [LocalIndex(docs) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda ix: ix.refresh(), indexes))
    assert sorted(len(r.read) for r in reports) == [0, 0, 0, 5]
    assert all(r.files == 5 for r in reports)
    for ix in indexes:
        ix.close()


def test_unreadable_documents_are_recorded_not_fatal(docs: Path) -> None:
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with LocalIndex(docs) as ix:
        report = ix.refresh()
        assert "broken.pdf" in report.failed and report.files == 5
        assert ix.refresh().read == []  # not read again until it changes


def test_bm25_ranks_the_passage_about_the_query_first(tmp_path: Path) -> None:
    d = tmp_path / "bm25"
    d.mkdir()
    (d / "mostly.md").write_text("# Lighthouses\n\nThe lighthouse keeper trimmed the lighthouse lamp; "
                                 "every lighthouse on the coast had one.\n")
    (d / "once.md").write_text("# Harbours\n\nShips, cranes, warehouses, fish markets and one lighthouse, "
                               "far away, beyond the cranes and the long breakwater of the harbour.\n")
    (d / "none.md").write_text("# Bakeries\n\nBread, rolls and cakes.\n")
    (d / "both.md").write_text("# Notes\n\nThe lighthouse keeper kept a logbook of the fog signals.\n")
    with LocalIndex(d) as ix:
        ix.refresh()
        order = [Path(h.path).name for h in ix.search("lighthouse", 5)]
        assert order[0] == "mostly.md" and order[-1] == "once.md" and "none.md" not in order
        # more of the query's words beat one word repeated; stopwords in a question do not count
        assert Path(ix.search("What did the lighthouse keeper write in his logbook?", 1)[0].path).name == "both.md"


def test_query_text_is_never_fts5_syntax(docs: Path) -> None:
    assert fts_query('tide AND "clock" OR NEAR(x) -y*') == '"tide" OR "clock" OR "near" OR "x" OR "y"'
    assert fts_query("the of") == '"the" OR "of"'  # only stopwords: keep them
    with LocalIndex(docs) as ix:
        ix.refresh()
        for q in ['"unbalanced', "a:b (c", "col:tide", "*", "", "NOT", "^tide"]:
            ix.search(q, 3)  # no sqlite3.OperationalError


def test_symlinks_are_not_indexed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("the launch codes are zebra\n")
    d = tmp_path / "linked"
    d.mkdir()
    (d / "ok.md").write_text("nothing about it\n")
    (d / "link.md").symlink_to(outside / "secret.md")
    (d / "dirlink").symlink_to(outside, target_is_directory=True)
    with LocalIndex(d) as ix:
        assert ix.refresh().read == ["ok.md"]
        assert ix.search("launch codes zebra", 5) == []


def test_not_a_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        LocalIndex(tmp_path / "missing")
    with pytest.raises(ConfigError, match="not a directory"):
        make_backend(f"local:{tmp_path / 'missing'}")


# --------------------------------------------------------------------------------- search + fetch tools
async def test_search_tool_returns_numbered_passage_blocks_with_file_urls(docs: Path, xdg_cache: Path) -> None:
    search, fetch = search_tools(f"local:{docs}")
    assert not list(xdg_cache.rglob("*.sqlite"))  # nothing built until the first search
    ctx = ToolContext()
    obs = await search({"questions": "tide clock||harbor lighthouse"}, ctx)
    assert not obs.is_error and obs.data["backend"] == "local"
    tide_url = (docs / "tides.md").as_uri() + "#p1"
    assert f"[webpage 1 begin]\nTitle: Tide clocks\nURL: {tide_url}\nSnippet: # Tide clocks A float" in obs.text
    lamp = next(r for r in obs.data["results"] if r["url"].startswith((docs / "lamp.html").as_uri()))
    assert f"[webpage {lamp['n']} begin]\nTitle: Harbor lamps" in obs.text
    assert list(xdg_cache.rglob("*.sqlite"))
    # fetch opens a search result by its file: URL, under the same source number
    page = await fetch({"url": tide_url}, ctx)
    assert not page.is_error, page.text
    assert page.text.startswith("[citation:1] Tide clocks\n") and "stilling well" in page.text
    assert page.data["source"] == 1 and page.data["kind"] == "text"
    pdf = await fetch({"url": (docs / "report.pdf").as_uri()}, ctx)
    assert not pdf.is_error and "900 tonnes" in pdf.text and pdf.data["kind"] == "pdf"
    html = await fetch({"url": (docs / "lamp.html").as_uri() + "#p1"}, ctx)
    assert "first lit in 1890" in html.text and "<p>" not in html.text
    assert "file: URL" in fetch.parameters["properties"]["url"]["description"]
    assert [s.url for s in ctx.sources.all()][:1] == [tide_url]


async def test_search_builds_the_index_outside_the_query_deadline(docs: Path) -> None:
    backend = LocalBackend(docs)
    tool = SearchTool(backend, deadline=1e-9)  # any real query time would miss this deadline ...
    backend.index.refresh()  # ... so build first; prepare() then finds it current
    await backend.prepare()
    assert backend.report.read == []
    obs = await tool({"questions": "tide"}, ToolContext())
    assert "did not answer within" in obs.text  # the deadline covers the query itself


@pytest.mark.parametrize("make_url", [
    lambda d, o: "file:///etc/passwd",
    lambda d, o: (o / "secret.md").as_uri(),
    lambda d, o: d.as_uri() + "/../outside/secret.md",
    lambda d, o: d.as_uri() + "/%2E%2E/outside/secret.md",
    lambda d, o: (d / "link.md").as_uri(),  # a symlink inside the folder that leads out
    lambda d, o: (d / "dirlink" / "secret.md").as_uri(),  # a symlinked folder
    lambda d, o: (d / ".hidden" / "secret.md").as_uri(),
    lambda d, o: (d / "ignored.csv").as_uri(),
    lambda d, o: "file://otherhost" + str(d / "tides.md"),
    lambda d, o: "file:tides.md",
])
async def test_fetch_refuses_file_urls_outside_the_folder(docs: Path, make_url, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("the launch codes are zebra\n")
    (docs / "link.md").symlink_to(outside / "secret.md")
    (docs / "dirlink").symlink_to(outside, target_is_directory=True)
    tool = FetchTool(local_roots=[docs])
    ctx = ToolContext()
    obs = await tool({"url": make_url(docs, outside)}, ctx)
    assert obs.is_error and obs.data.get("refused") is True, obs.text
    assert "zebra" not in obs.text and len(ctx.sources) == 0


async def test_fetch_refuses_file_urls_without_a_local_backend(docs: Path) -> None:
    for tool in (FetchTool(), search_tools("fixture:" + str(_fixture(docs.parent)))[1]):
        obs = await tool({"url": (docs / "tides.md").as_uri()}, ToolContext())
        assert obs.is_error and "only http:// and https://" in obs.text
    # the local roots are only those of the local backend, not of the other backends named with it
    other = docs.parent / "other"
    other.mkdir()
    (other / "x.md").write_text("x\n")
    _search, fetch = search_tools(f"local:{other},fixture:{_fixture(docs.parent)}")
    assert (await fetch({"url": (other / "x.md").as_uri()}, ToolContext())).is_error is False
    assert (await fetch({"url": (docs / "tides.md").as_uri()}, ToolContext())).data["refused"] is True


async def test_fetch_of_a_missing_or_odd_file_inside_the_folder(docs: Path) -> None:
    tool = FetchTool(local_roots=[docs])
    obs = await tool({"url": (docs / "gone.md").as_uri()}, ToolContext())
    assert obs.is_error and "No such document" in obs.text and not obs.data.get("refused")
    os.mkfifo(docs / "pipe.txt")
    obs = await tool({"url": (docs / "pipe.txt").as_uri()}, ToolContext())  # does not hang
    assert obs.is_error and "not a regular file" in obs.text


# ------------------------------------------------------------------------------------ several backends
def _fixture(folder: Path) -> Path:
    path = folder / "web.json"
    path.write_text(json.dumps({"*": [
        {"title": "Tide clock - Wikipedia", "url": "https://en.wikipedia.org/wiki/Tide_clock", "snippet": "web one"},
        {"title": "Tide tables", "url": "https://example.org/tides", "snippet": "web two"}]}))
    return path


def test_backend_specs_split_on_commas_before_a_backend_name(tmp_path: Path) -> None:
    assert split_specs("local:/a,duckduckgo") == ["local:/a", "duckduckgo"]
    assert split_specs("local:/data/x,y,fixture:/f.json, searxng:http://h:8888,ddgs") == [
        "local:/data/x,y", "fixture:/f.json", "searxng:http://h:8888", "ddgs"]
    assert split_specs("ddgs,ddgs") == ["ddgs"]
    assert local_roots("local:/a,duckduckgo,local:/b,c") == ["/a", "/b,c"]
    assert local_roots(None) == [] and local_roots("duckduckgo") == []
    (tmp_path / "d").mkdir()
    multi = make_backend(f"local:{tmp_path / 'd'},fixture:{_fixture(tmp_path)},searxng:http://127.0.0.1:1")
    assert isinstance(multi, MultiBackend) and multi.name == "local+fixture+searxng"
    assert multi.roots == [(tmp_path / "d").resolve()]
    assert make_backend("searxng:http://127.0.0.1:1").url == "http://127.0.0.1:1"


async def test_several_backends_are_merged_and_numbered_once(docs: Path) -> None:
    search, fetch = search_tools(f"local:{docs},fixture:{_fixture(docs.parent)}")
    ctx = ToolContext()
    obs = await search({"questions": "tide clock||tide tables"}, ctx)
    assert obs.data["backend"] == "local+fixture"
    numbers = [int(n) for n in re.findall(r"\[webpage (\d+) begin\]", obs.text)]
    assert numbers == list(range(1, len(numbers) + 1))  # each result once, numbered in order
    urls = [r["url"] for r in obs.data["results"]]
    assert len(urls) == len(set(urls))
    assert urls[:2] == [(docs / "tides.md").as_uri() + "#p1", "https://en.wikipedia.org/wiki/Tide_clock"]
    assert "https://example.org/tides" in urls
    assert "(only results already listed above)" in obs.text  # the second query found nothing new
    assert (await fetch({"url": urls[0]}, ctx)).data["source"] == 1


class _Broken:
    name = "broken"

    async def search(self, query: str, max_results: int) -> list[SearchHit]:
        raise SearchError("engine down")


async def test_a_failing_backend_is_left_out_until_all_fail(docs: Path) -> None:
    fixture = FixtureBackend(_fixture(docs.parent))
    hits = await MultiBackend([_Broken(), fixture]).search("anything", 5)
    assert [h.url for h in hits] == ["https://en.wikipedia.org/wiki/Tide_clock", "https://example.org/tides"]
    with pytest.raises(SearchError, match="every search backend failed.*engine down"):
        await MultiBackend([_Broken(), _Broken()]).search("anything", 5)
    merged = await MultiBackend([fixture, fixture]).search("anything", 1)
    assert len(merged) == 1  # capped at max_results


# ------------------------------------------------------------------------------------------- the CLI
def _env(tmp_path: Path) -> dict[str, str]:
    return cli_env(XDG_CACHE_HOME=str(tmp_path / "cli-cache"))


def test_cli_index_builds_then_refreshes(docs: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    proc = run_cli("index", str(docs), "--search", "tide clock", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{docs}: 5 documents" in proc.stdout and "(5 read, 0 removed, 0 unreadable)" in proc.stdout
    assert str(tmp_path / "cli-cache" / "agentkit" / "index") in proc.stdout
    assert f"- Tide clocks  {(docs / 'tides.md').as_uri()}#p1" in proc.stdout
    again = run_cli("index", str(docs), "--json", env=env)
    data = json.loads(again.stdout)
    assert data["read"] == 0 and data["files"] == 5 and data["passages"] >= 5
    bad = run_cli("index", str(tmp_path / "missing"), env=env)
    assert bad.returncode == 2 and bad.stderr.strip() == f"agentkit: error: local search folder {tmp_path / 'missing'} " \
                                                         "is not a directory."


def test_research_over_the_local_corpus_cites_file_paths(tmp_path: Path) -> None:
    """No index beforehand: the run builds it, searches it, fetches a document, cites both."""
    observatory = (CORPUS / "observatory.md").as_uri() + "#p1"
    turns = [
        {"reasoning": "Search the documents.", "content": "", "tool_calls": [{"name": "search", "arguments": json.dumps(
            {"questions": "Orrin Valley Observatory founded||observatory reopened museum"})}]},
        {"reasoning": "Read the first one.", "content": "", "tool_calls": [{"name": "fetch", "arguments": json.dumps(
            {"url": observatory})}]},
        {"reasoning": "Done.", "content": "It was founded in 1921 by Mira Kessel [citation:1] and reopened as a "
                                          "museum in 2003 [citation:2]."},
    ]
    script = write_jsonl(tmp_path / "script.jsonl", turns)
    out = tmp_path / "out"
    proc = run_cli("research", "When was the Orrin Valley Observatory founded?", "--model", f"replay:{script}",
                   "--search-backend", f"local:{CORPUS}", "--out", str(out), env=_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list((tmp_path / "cli-cache" / "agentkit" / "index").glob("*.sqlite"))
    records = [json.loads(x) for x in (out / "trajectory.jsonl").read_text().splitlines()]
    found, opened = [r for r in records if r["type"] == "tool_result"]
    assert "[webpage 1 begin]\nTitle: The Orrin Valley Observatory\nURL: " + observatory in found["observation"]["text"]
    assert "founded in 1921" in opened["observation"]["text"] and not opened["observation"].get("is_error")
    result = json.loads((out / "result.json").read_text())
    cited = {s["n"]: s["url"] for s in result["sources"] if s["n"] in (1, 2)}
    assert cited == {1: observatory, 2: (CORPUS / "history.html").as_uri() + "#p1"}
    for s in result["sources"]:  # every source is a document of the corpus
        path = Path(s["url"].removeprefix("file://").split("#")[0])
        assert path.is_file() and path.parent in (CORPUS, CORPUS / "notes")
    answer = (out / "answer.md").read_text()
    assert f"1. [The Orrin Valley Observatory]({observatory})" in answer
    assert "2. [Closure and reopening of the Orrin Valley Observatory](" in answer


def test_research_with_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("research", "q", "--model", "replay:/dev/null", "--search-backend",
                   f"local:{tmp_path / 'missing'}", "--out", str(tmp_path / "out"), env=_env(tmp_path))
    assert proc.returncode == 2 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr
