"""The ``fetch`` tool: a URL in, clean markdown out, paged so long documents fit the context.

Pages are downloaded with one shared httpx client (HTTP/1.1 and 2), following redirects by hand
so every hop is checked by ``netguard`` before it is requested. httpx's timeout bounds each read
only, so a page that trickles a byte at a time would never end: ``deadline`` bounds the whole
download, redirects included. HTML goes to trafilatura as raw
**bytes** (it detects the charset better than we could), PDFs go to pypdf, plain text is decoded.
The extracted document is cached per run, so ``page=2`` does not download it again.

``file:`` URLs are opened only when the tool is given ``local_roots`` (the folders of a
``local:DIR`` search backend) and only for a file inside one of them once every symlink is
resolved; without local roots they are refused like any other non-http(s) scheme.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import ssl
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from agentkit.errors import ToolError
from agentkit.tools.base import Observation, ToolContext
from agentkit.tools.netguard import AddressRefused, AllowList, GuardedBackend, check_url

__all__ = ["LOCAL_KINDS", "Document", "FetchTool", "extract_file", "extract_html", "extract_pdf", "is_local_document",
           "neutralize_markers", "split_pages"]

USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/rss+xml",
               "application/atom+xml", "application/javascript", "application/x-yaml", "application/yaml")


@dataclass
class Document:
    """A fetched page after extraction."""

    url: str  # what was asked for (the source-table key)
    final_url: str  # after redirects
    text: str
    title: str = ""
    author: str = ""
    date: str = ""
    kind: str = "html"  # html | pdf | text
    note: str = ""  # e.g. that the download stopped at the size cap


# ---------------------------------------------------------------------------- extraction helpers
_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def extract_html(data: bytes, url: str) -> tuple[str, dict[str, str]]:
    """Main text of an HTML page as markdown, plus its metadata (title, author, date, ...)."""
    import trafilatura

    out = trafilatura.extract(data, url=url, output_format="markdown", with_metadata=True,
                              include_tables=True, include_comments=False, favor_recall=True)
    meta: dict[str, str] = {}
    text = out or ""
    m = _FRONT.match(text)
    if m:
        for line in m.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip()] = value.strip().strip('"')
        text = text[m.end():]
    if not text.strip():
        # Nothing looked like an article (a tiny page, a link list): keep all visible text.
        text = trafilatura.html2txt(data) or ""
        if not meta.get("title"):
            md = trafilatura.extract_metadata(data.decode("utf-8", "replace"), default_url=url)
            if md is not None and md.title:
                meta["title"] = md.title
    return text.strip(), meta


def extract_pdf(data: bytes) -> tuple[str, dict[str, str]]:
    """Text of a PDF, one block per page, plus title/author from its info dictionary."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        parts = [(p.extract_text() or "").strip() for p in reader.pages]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError) as e:
        raise ToolError(f"Could not read the PDF ({e}); try another source for this document.") from e
    meta = {k: str(info.get(f"/{k.capitalize()}") or "") for k in ("title", "author")}
    return "\n\n".join(p for p in parts if p), {k: v for k, v in meta.items() if v}


# The local documents fetch opens and ``agentkit index`` reads, by file extension.
LOCAL_KINDS = {".md": "text", ".markdown": "text", ".txt": "text", ".text": "text", ".rst": "text",
               ".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf"}
_MD_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.M)


def is_local_document(relative: str | Path) -> bool:
    """A path (relative to its corpus folder) of a document we read: a known extension, no hidden part."""
    parts = Path(relative).parts
    return bool(parts) and not any(p.startswith(".") for p in parts) and \
        Path(relative).suffix.lower() in LOCAL_KINDS


def extract_file(path: str | Path, data: bytes | None = None) -> tuple[str, dict[str, str], str]:
    """Text, metadata and kind (html | pdf | text) of a local document, by its extension.

    The same extraction as for downloads: HTML to trafilatura, PDF to pypdf, text decoded as
    UTF-8. A markdown file's first ``# heading`` is its title, or a text file's first line when a
    blank line follows it.
    """
    path = Path(path)
    if data is None:
        data = path.read_bytes()
    kind = LOCAL_KINDS.get(path.suffix.lower(), "text")
    if kind == "pdf":
        text, meta = extract_pdf(data)
    elif kind == "html":
        text, meta = extract_html(data, path.resolve().as_uri())
    else:
        text, meta = data.decode("utf-8", "replace"), {}
        m = _MD_TITLE.search(text[:4000])
        first, gap, _rest = text.lstrip()[:200].partition("\n\n")
        if m:
            meta["title"] = m.group(1).strip()
        elif gap and "\n" not in first.strip() and len(first.strip()) <= 100:  # a plain-text heading line
            meta["title"] = first.strip()
    return neutralize_markers(text), {k: neutralize_markers(v) for k, v in meta.items()}, kind


def split_pages(text: str, page_chars: int) -> list[str]:
    """Cut ``text`` into pages of at most ``page_chars``, at paragraph, then line, then word breaks.

    Concatenating the pages gives back ``text`` exactly: paging never loses a character.
    """
    if len(text) <= page_chars:
        return [text]
    pages: list[str] = []
    start = 0
    while start < len(text):
        end = start + page_chars
        if end >= len(text):
            pages.append(text[start:])
            break
        window = text[start:end]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            i = window.rfind(sep)
            if i > page_chars // 3:
                cut = i + len(sep)
                break
        if cut <= 0:
            cut = page_chars
        pages.append(text[start:start + cut])
        start += cut
    return pages


def neutralize_markers(text: str) -> str:
    """Make DeepSeek special-token look-alikes in web text inert (full-width bars become ASCII).

    A page containing ``<｜tool▁output▁end｜>`` would otherwise end the tool output early when the
    prompt is rendered for a raw-completions server: a prompt injection. ASCII bars are not
    special tokens, so the text stays readable and harmless.
    """
    if "\uff5c" not in text:
        return text
    return text.replace("<\uff5c", "<|").replace("\uff5c>", "|>")


def _charset(content_type: str) -> str | None:
    m = re.search(r"charset=([\w.:-]+)", content_type, re.I)
    return m.group(1).strip("\"'") if m else None


# ---------------------------------------------------------------------------- the tool
class FetchTool:
    """Download a web page or PDF and return its main text as markdown, one page at a time."""

    name = "fetch"
    description = (
        "Open a web page or PDF by URL and read its main content as clean markdown (menus, ads and "
        "boilerplate removed), with its title, author and date. Long documents are split into pages: "
        "the result says how many pages there are, and fetch(url, page=2) continues where page 1 "
        "stopped. Use it to read a search result in full before relying on it; cite it with the "
        "[citation:N] number shown in the result. Only public http(s) URLs can be opened."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "The full http:// or https:// URL to open."},
            "page": {"type": "integer", "minimum": 1, "default": 1,
                     "description": "Which page of a long document to return (1 = the beginning)."},
        },
        "required": ["url"],
    }
    parallel_safe = True

    def __init__(self, *, allow: list[str] | None = None, timeout: float = 20.0, deadline: float | None = 30.0,
                 max_bytes: int = 15_000_000, max_redirects: int = 5, page_chars: int = 12_000,
                 user_agent: str = USER_AGENT, http2: bool = True,
                 verify: bool | ssl.SSLContext = True, local_roots: list[str | Path] | None = None) -> None:
        self.allow_entries = list(allow or [])
        # folders whose documents file: URLs may open (a local:DIR search backend's); none: file: refused
        self.local_roots = [Path(r).expanduser().resolve() for r in local_roots or []]
        if self.local_roots:  # tell the model it may open the file: URLs that search returns
            self.description = self.description.replace(
                "Only public http(s) URLs can be opened.",
                "Public http(s) URLs and the file: URLs of local documents in search results can be opened.")
            self.parameters = {**self.parameters, "properties": {
                **self.parameters["properties"],
                "url": {"type": "string", "description": "The full http(s):// URL, or a file: URL from the search "
                                                         "results."}}}
        self.verify = verify  # an SSLContext trusts extra CAs (tests, corporate proxies)
        self.timeout = timeout  # per connect/read
        self.deadline = deadline  # the whole download, redirects included (None: no limit)
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.page_chars = page_chars
        self.user_agent = user_agent
        self.http2 = http2
        self._clients: dict[tuple[int, tuple[str, ...]], httpx.AsyncClient] = {}

    # -- client ---------------------------------------------------------------------------------
    def _allow(self, ctx: ToolContext | None) -> AllowList:
        extra = (ctx.settings.get("fetch_allow") if ctx else None) or []
        if isinstance(extra, str):
            extra = [extra]
        return AllowList([*self.allow_entries, *extra])

    def client(self, allow: AllowList, entries: tuple[str, ...] = ()) -> httpx.AsyncClient:
        """The shared client for this event loop and allow-list (connections are reused)."""
        key = (id(asyncio.get_running_loop()), entries)
        cl = self._clients.get(key)
        if cl is None or cl.is_closed:
            transport = httpx.AsyncHTTPTransport(http2=self.http2, retries=0, verify=self.verify)
            pool = getattr(transport, "_pool", None)
            if pool is None or not hasattr(pool, "_network_backend"):  # pragma: no cover - httpx changed
                raise RuntimeError("httpx transport layout changed: cannot install the address guard")
            pool._network_backend = GuardedBackend(allow)
            cl = httpx.AsyncClient(
                transport=transport, follow_redirects=False, trust_env=False,
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                headers={"User-Agent": self.user_agent,
                         "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8,*/*;q=0.5",
                         "Accept-Language": "en-US,en;q=0.9"})
            self._clients[key] = cl
        return cl

    async def aclose(self) -> None:
        for cl in self._clients.values():
            await cl.aclose()
        self._clients.clear()

    # -- download -------------------------------------------------------------------------------
    async def download(self, url: str, ctx: ToolContext | None = None) -> tuple[str, str, bytes, bool]:
        """GET ``url`` following checked redirects; returns (final_url, content_type, body, cut).

        Raises ``ToolError`` when the whole download takes longer than ``deadline``.
        """
        try:
            async with asyncio.timeout(self.deadline) as limit:
                return await self._download(url, ctx)
        except TimeoutError:
            if not limit.expired():
                raise
            raise ToolError(f"Gave up on {url} after {self.deadline:g}s (the time limit for one fetch, redirects "
                            "included): the server is too slow. Try another source.") from None

    async def _download(self, url: str, ctx: ToolContext | None) -> tuple[str, str, bytes, bool]:
        allow = self._allow(ctx)
        entries = tuple(sorted([*self.allow_entries, *((ctx.settings.get("fetch_allow") or []) if ctx else [])]))
        client = self.client(allow, entries)
        current = url
        for _hop in range(self.max_redirects + 1):
            await check_url(current, allow)
            async with client.stream("GET", current) as resp:
                if resp.is_redirect and "location" in resp.headers:
                    current = urljoin(current, resp.headers["location"])
                    continue
                if resp.status_code >= 400:
                    raise ToolError(f"HTTP {resp.status_code} {resp.reason_phrase} for {current}; "
                                    "the page is unavailable, try another source.")
                ctype = resp.headers.get("content-type", "")
                body = bytearray()
                cut = False
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        del body[self.max_bytes:]
                        cut = True
                        break
                return current, ctype, bytes(body), cut
        raise ToolError(f"Too many redirects (more than {self.max_redirects}) starting at {url}; "
                        "try the final URL directly or another source.")

    # -- local documents ------------------------------------------------------------------------
    def local_path(self, url: str) -> Path:
        """The file a ``file:`` URL names, once checked to lie inside ``local_roots``.

        Symlinks are resolved before the check, so a link inside a root that leads outside it is
        refused; the file is opened without following a final symlink and, on Linux, the opened
        descriptor's path is checked again (a path swapped for a link after the check is caught).
        """
        parts = urlsplit(url)
        shown = url if len(url) <= 200 else url[:200] + "…"
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise AddressRefused(f"Refused to open {shown!r}: a file: URL must be file:///absolute/path.")
        path = Path(unquote(parts.path)).resolve()
        root = next((r for r in self.local_roots if path.is_relative_to(r)), None)
        if root is None or not is_local_document(path.relative_to(root)):
            folders = ", ".join(str(r) for r in self.local_roots)
            raise AddressRefused(f"Refused to open {shown!r}: only the documents of the searched folder(s) "
                                 f"({folders}) can be opened with file: URLs.", reason="outside the local roots")
        return path

    def _read_local(self, url: str) -> Document:
        path = self.local_path(url)
        try:
            # O_NONBLOCK: a FIFO named like a document must not hang the call (it fails the check below)
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise ToolError(f"No such document: {path}. Use a file: URL from the search results.") from None
        except OSError as e:
            raise ToolError(f"Could not open {path}: {e.strerror or e}.") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ToolError(f"{path} is not a regular file.")
            try:
                opened = Path(os.readlink(f"/proc/self/fd/{fd}")) if sys.platform.startswith("linux") else None
            except OSError:  # no /proc (some containers): the check before opening stands alone
                opened = None
            if opened is not None:
                if not any(opened.is_relative_to(r) for r in self.local_roots):
                    raise AddressRefused(f"Refused to open {url!r}: it no longer leads inside the searched folder.",
                                         reason="outside the local roots")
            data = f.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise ToolError(f"{path} is larger than the {self.max_bytes // 1_000_000} MB limit.")
        text, meta, kind = extract_file(path, data)
        return Document(url=url, final_url=url, text=text, title=meta.get("title") or path.name,
                        author=meta.get("author", ""), date=meta.get("date", ""), kind=kind)

    async def load(self, url: str, ctx: ToolContext | None = None) -> Document:
        """Download and extract ``url`` (no caching)."""
        if self.local_roots and url[:5].lower() == "file:":
            return await asyncio.to_thread(self._read_local, url)
        final, ctype, body, cut = await self.download(url, ctx)
        mime = ctype.split(";")[0].strip().lower()
        note = f"download stopped at the {self.max_bytes // 1_000_000} MB limit" if cut else ""
        if mime == "application/pdf" or (not mime and body.startswith(b"%PDF-")) or \
                (mime == "application/octet-stream" and body.startswith(b"%PDF-")):
            if cut:
                raise ToolError(f"The PDF at {url} is larger than the {self.max_bytes // 1_000_000} MB limit.")
            text, meta = await asyncio.to_thread(extract_pdf, body)
            kind = "pdf"
        elif mime in _HTML_TYPES or (not mime and body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))):
            text, meta = await asyncio.to_thread(extract_html, body, final)
            kind = "html"
        elif mime.startswith(_TEXT_TYPES) or not mime:
            text = body.decode(_charset(ctype) or "utf-8", "replace")
            meta, kind = {}, "text"
        else:
            raise ToolError(f"Cannot read {url}: its content type is {mime!r}, not a web page, PDF or text.")
        text = neutralize_markers(text)
        return Document(url=url, final_url=final, text=text, title=neutralize_markers(meta.get("title", "")),
                        author=meta.get("author", ""), date=meta.get("date", ""), kind=kind, note=note)

    # -- tool call ------------------------------------------------------------------------------
    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        url = str(args.get("url") or "").strip()
        try:
            page = int(args.get("page") or 1)
        except (TypeError, ValueError):
            return Observation(text="`page` must be a whole number (1 for the beginning).", is_error=True)
        if not url:
            return Observation(text="Give the `url` to open (a full http:// or https:// URL).", is_error=True)
        cache: dict[str, Document] = ctx.data.setdefault("fetch_cache", {})
        doc = cache.get(url)
        if doc is None:
            try:
                doc = await self.load(url, ctx)
            except AddressRefused as e:
                return Observation(text=str(e), is_error=True, data={"url": url, "refused": True, **e.details})
            except ToolError as e:
                return Observation(text=str(e), is_error=True, data={"url": url})
            except httpx.TimeoutException:
                return Observation(text=f"Timed out after {self.timeout:g}s fetching {url}; try another source.",
                                   is_error=True, data={"url": url})
            except httpx.HTTPError as e:
                return Observation(text=f"Could not fetch {url}: {type(e).__name__}: {e}. Check the URL or "
                                        "try another source.", is_error=True, data={"url": url})
            cache[url] = doc
        pages = split_pages(doc.text, self.page_chars)
        n = ctx.sources.add(url, doc.title)
        if page > len(pages):
            return Observation(text=f"{url} has only {len(pages)} page(s); ask for page 1 to {len(pages)}.",
                               is_error=True, data={"url": url, "pages": len(pages)})
        return Observation(text=self._render(doc, n, page, pages),
                           data={"url": url, "final_url": doc.final_url, "source": n, "page": page,
                                 "pages": len(pages), "kind": doc.kind, "title": doc.title})

    @staticmethod
    def _render(doc: Document, n: int, page: int, pages: list[str]) -> str:
        head = [f"[citation:{n}] {doc.title or doc.url}", f"URL: {doc.final_url}"]
        if doc.final_url != doc.url:
            head[-1] += f" (redirected from {doc.url})"
        by = " | ".join(x for x in (f"Author: {doc.author}" if doc.author else "",
                                      f"Date: {doc.date}" if doc.date else "") if x)
        if by:
            head.append(by)
        total = len(pages)
        head.append(f"Page {page} of {total}" + (f" ({doc.note})" if doc.note else ""))
        body = pages[page - 1].strip() or "(no readable text on this page)"
        tail = (f"\n\n[Page {page} of {total}. Call fetch with page={page + 1} to continue.]"
                if page < total else (f"\n\n[End of document, page {page} of {total}.]" if total > 1 else ""))
        return "\n".join(head) + "\n\n" + body + tail
