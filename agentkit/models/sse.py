"""Server-sent events: turn a stream of text lines into ``data`` payloads.

Comment lines (``: OPENROUTER PROCESSING``, ``: keep-alive``) and blank keep-alive lines are
skipped; multi-line ``data`` fields are joined with newlines as the SSE spec says. Each
payload is yielded as text; the caller decides what ``[DONE]`` and JSON mean.
"""

from __future__ import annotations

from typing import AsyncIterable, AsyncIterator


async def iter_sse_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    buf: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if buf:
                yield "\n".join(buf)
                buf = []
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if not sep:
            continue  # a field name alone carries no data
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            # A server that omits the blank separator between events would otherwise glue
            # two JSON objects together: a complete payload followed by a new one ends the first.
            if buf and value.startswith("{") and buf[-1].endswith("}"):
                yield "\n".join(buf)
                buf = []
            buf.append(value)
    if buf:
        yield "\n".join(buf)
