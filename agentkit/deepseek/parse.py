"""Parse raw DeepSeek completions into reasoning, visible content and tool calls.

Accepts every grammar DeepSeek models (and servers that leak their markup) are seen to produce:
the V3.1 ``<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>name<｜tool▁sep｜>{json}<｜tool▁call▁end｜>…``,
the legacy V3-0324/R1 ``function<｜tool▁sep｜>name`` + fenced JSON, ASCII-bar and ``_``/space
spellings of the markers, a leading ``<think>…</think>`` or ``…</think>``, and DSML blocks
(``<｜DSML｜function_calls>``). Matching is DOTALL, so pretty-printed arguments work.

Rules: each call is checked on its own (one bad call never hides the good ones; it is reported
in ``errors``); when no call survives, there is no tool call and the whole text is content.
``parse_completion`` never raises. ``StreamParser`` gives provisional deltas while text arrives;
its ``finish()`` returns the authoritative one-shot parse of the whole text.

Why one module over 450 lines: the one-shot and the streaming parser share every grammar and
must agree on every input (a property test checks it), so they live together.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from agentkit.deepseek.special import THINK_BEGIN, THINK_END
from agentkit.messages import ToolCall, new_tool_call_id

_BAR = "[｜|]"
_J = r"[▁_ \\]*"  # joiner between words: ▁, _, space, or the escaped \_ llama.cpp also accepts
CALLS_BEGIN_RE = re.compile(rf"<{_BAR}tool{_J}calls(?:{_J}begin)?{_BAR}>")
CALLS_END_RE = re.compile(rf"<{_BAR}tool{_J}calls{_J}end{_BAR}>")
CALL_BEGIN_RE = re.compile(rf"<{_BAR}tool{_J}call{_J}begin{_BAR}>")
CALL_END_RE = re.compile(rf"<{_BAR}tool{_J}call{_J}end{_BAR}>")
SEP_RE = re.compile(rf"<{_BAR}tool{_J}sep{_BAR}>")
EOS_TAIL_RE = re.compile(rf"(?:\s*(?:<{_BAR}end{_J}of{_J}sentence{_BAR}>|<\|EOT\|>))+\s*$")
DSML_OPEN_RE = re.compile(rf"<{_BAR}DSML{_BAR}function_calls>")
DSML_CLOSE_RE = re.compile(rf"</{_BAR}DSML{_BAR}function_calls>")
DSML_INVOKE_RE = re.compile(rf'<{_BAR}DSML{_BAR}invoke\s+name="([^"]*)"\s*>')
DSML_INVOKE_END_RE = re.compile(rf"</{_BAR}DSML{_BAR}invoke>")
DSML_PARAM_RE = re.compile(rf'<{_BAR}DSML{_BAR}parameter\s+name="([^"]*)"(?:\s+string="(true|false)")?\s*>')
DSML_PARAM_END_RE = re.compile(rf"</{_BAR}DSML{_BAR}parameter>")
# Where a tool block can start: the block opener, a bare call opener, or a DSML block.
BLOCK_START_RE = re.compile(f"{CALLS_BEGIN_RE.pattern}|{CALL_BEGIN_RE.pattern}|{DSML_OPEN_RE.pattern}")


class ParsedCompletion(BaseModel):
    """A completion split into its parts. ``errors`` says what could not be used, for the model."""

    reasoning: str | None = None
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    trailing: str = ""  # text after the tool-call block (kept apart; not part of content)

    @property
    def tools_called(self) -> bool:
        return bool(self.tool_calls)


def parse_completion(text: str, version: str = "v3.1", *, thinking: bool | None = None) -> ParsedCompletion:
    """Parse one raw completion. ``thinking``: the prompt ended inside ``<think>`` so the text
    starts with reasoning (default: True for ``version="r1"``, else False)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        return _parse(text, version, thinking)
    except Exception as e:  # noqa: BLE001 - the contract is "never raises"
        return ParsedCompletion(content=text, errors=[f"internal parser error ({type(e).__name__}: {e}); "
                                                      "the whole text was kept as content"])


def _parse(text: str, version: str, thinking: bool | None) -> ParsedCompletion:
    if thinking is None:
        thinking = version == "r1"
    reasoning, body = split_reasoning(text, thinking)
    body = EOS_TAIL_RE.sub("", body)
    calls, errors, start, trailing = find_tool_calls(body)
    content = body[:start].rstrip() if calls else body
    if reasoning is not None and not reasoning.strip():
        reasoning = None
    return ParsedCompletion(reasoning=reasoning, content=content, tool_calls=calls, errors=errors, trailing=trailing)


def split_reasoning(text: str, thinking: bool) -> tuple[str | None, str]:
    """(reasoning, rest).

    Reasoning is open when the prompt ended inside ``<think>`` (``thinking``) or the text itself
    opens with ``<think>``; it then runs to the first ``</think>``, and markup written before
    that is part of the reasoning, not a call (a tool block the model drafts while thinking is
    not executed). With no ``</think>`` at all, reasoning ends where a tool block begins.

    Otherwise (non-thinking) the text is the answer: only a ``</think>`` at the very start (the
    model repeating the prompt's closer) is dropped; one later on is literal text.
    """
    lead = len(text) - len(text.lstrip())
    opened = text.startswith(THINK_BEGIN, lead)
    if opened:
        start = lead + len(THINK_BEGIN)
    elif thinking:
        start = 0
    elif text.startswith(THINK_END, lead):
        return None, text[lead + len(THINK_END):]
    else:
        return None, text
    close = text.find(THINK_END, start)
    if close >= 0:
        return text[start:close], text[close + len(THINK_END):]
    block = BLOCK_START_RE.search(text, start)
    block_at = block.start() if block else len(text)
    return text[start:block_at], text[block_at:]


def _unfence(s: str) -> str:
    t = s.strip()
    if t.startswith("```"):
        nl = t.find("\n")
        t = t[nl + 1:] if nl >= 0 else ""
        t = t.rstrip()
        t = t.removesuffix("```")
    return t.strip()


def parse_call_body(chunk: str) -> tuple[str, str]:
    """``name<｜tool▁sep｜>args`` (or legacy ``function<｜tool▁sep｜>name\\n```json…```) → (name, args).

    Raises ``ValueError`` with a short reason when the call cannot be used."""
    sep = SEP_RE.search(chunk)
    if sep is None:
        raise ValueError("no <｜tool▁sep｜> between name and arguments")
    name, args = chunk[: sep.start()].strip(), chunk[sep.end():]
    if name == "function" and not args.lstrip().startswith(("{", "[")):
        line, _, rest = args.partition("\n")
        name, args = line.strip(), rest
    args = _unfence(args)
    if not name or any(c in name for c in "<>\n\"{}"):
        raise ValueError(f"bad tool name {name[:60]!r}")
    if not args:
        args = "{}"
    try:
        json.loads(args)
    except ValueError as e:
        raise ValueError(f"arguments are not valid JSON ({e.__class__.__name__}: {str(e)[:80]})") from None
    return name, args


def find_tool_calls(body: str) -> tuple[list[ToolCall], list[str], int, str]:
    """(calls, errors, block start, trailing text) of the first tool block in ``body``."""
    m = BLOCK_START_RE.search(body)
    if m is None:
        return [], [], len(body), ""
    if DSML_OPEN_RE.fullmatch(m.group(0)):
        return _find_dsml(body, m)
    start = m.start()
    end = CALLS_END_RE.search(body, m.end())
    region_end = end.start() if end else len(body)
    trailing = body[end.end():].strip() if end else ""
    calls: list[ToolCall] = []
    errors: list[str] = []
    bounds = _call_bounds(body, m.end() if CALLS_BEGIN_RE.fullmatch(m.group(0)) else start, region_end, errors)
    for n, (lo, hi) in enumerate(bounds, 1):
        if lo < 0:
            continue
        try:
            name, args = parse_call_body(body[lo:hi])
        except ValueError as e:
            errors.append(f"tool call {n}: {e}; ignored")
            continue
        calls.append(ToolCall(id=new_tool_call_id(), name=name, arguments=args))
    if not calls and not errors:
        errors.append("tool-call block without any call; kept as text")
    return calls, errors, start, trailing


def _call_bounds(body: str, pos: int, region_end: int, errors: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each call's ``name<｜tool▁sep｜>args`` between ``pos`` and ``region_end``;
    (-1, -1) for a call that never closed. The call opener is optional (as in llama.cpp): after
    the block opener or a call's end, ``name<｜tool▁sep｜>args<｜tool▁call▁end｜>`` is a call too."""
    bounds: list[tuple[int, int]] = []
    while pos < region_end:
        begin = CALL_BEGIN_RE.search(body, pos, region_end)
        gap_end = begin.start() if begin else region_end
        if body[pos:gap_end].strip():  # text before the next opener: a call without its opener?
            close = CALL_END_RE.search(body, pos, gap_end)
            if close is not None and body[pos:close.start()].strip():
                bounds.append((pos, close.start()))
                pos = close.end()
                continue
            if SEP_RE.search(body, pos, gap_end):
                errors.append(f"tool call {len(bounds) + 1}: no <｜tool▁call▁begin｜>/<｜tool▁call▁end｜> "
                              "around it; ignored")
        if begin is None:
            break
        nxt = CALL_BEGIN_RE.search(body, begin.end(), region_end)
        limit = nxt.start() if nxt else region_end
        close = CALL_END_RE.search(body, begin.end(), limit)
        if close is None:
            where = "the output ended" if limit == len(body) else "the next call began"
            errors.append(f"tool call {len(bounds) + 1}: {where} before <｜tool▁call▁end｜>; ignored")
            bounds.append((-1, -1))
            pos = limit
            continue
        bounds.append((begin.end(), close.start()))
        pos = close.end()
    return bounds


def _elements(text: str, open_re: re.Pattern[str], close_re: re.Pattern[str]) -> list[tuple[re.Match[str], str]]:
    """(opening tag, inner text) of each closed element; linear: every scan starts after the last close."""
    out: list[tuple[re.Match[str], str]] = []
    pos = 0
    while (m := open_re.search(text, pos)) is not None:
        close = close_re.search(text, m.end())
        if close is None:
            break  # no close anywhere after: no later element can be complete either
        out.append((m, text[m.end():close.start()]))
        pos = close.end()
    return out


def _find_dsml(body: str, m: re.Match[str]) -> tuple[list[ToolCall], list[str], int, str]:
    close = DSML_CLOSE_RE.search(body, m.end())
    region = body[m.end(): close.start() if close else len(body)]
    trailing = body[close.end():].strip() if close else ""
    calls: list[ToolCall] = []
    errors: list[str] = []
    for n, (inv, inner) in enumerate(_elements(region, DSML_INVOKE_RE, DSML_INVOKE_END_RE), 1):
        name = inv.group(1).strip()
        args: dict[str, object] = {}
        bad = ""
        params = _elements(inner, DSML_PARAM_RE, DSML_PARAM_END_RE)
        for p, raw in params:
            key, is_string = p.group(1), p.group(2)
            if is_string == "true":
                args[key] = raw
                continue
            try:
                args[key] = json.loads(raw)
            except ValueError:
                if is_string == "false":
                    bad = f"parameter {key!r} is not valid JSON"
                    break
                args[key] = raw
        if not params and inner.strip():  # a JSON object as the whole body (as SGLang accepts)
            try:
                body_args = json.loads(inner.strip())
            except ValueError:
                body_args = None
            if isinstance(body_args, dict):
                args = body_args
            else:
                bad = "the invoke body is neither DSML parameters nor a JSON object"
        if bad or not name:
            errors.append(f"tool call {n}: {bad or 'empty tool name'}; ignored")
            continue
        calls.append(ToolCall(id=new_tool_call_id(), name=name, arguments=json.dumps(args, ensure_ascii=False)))
    if not calls and not errors:
        errors.append("DSML tool-call block without a complete call; kept as text")
    return calls, errors, m.start(), trailing


# --------------------------------------------------------------------------- streaming

_THINK_END_RE = re.compile(re.escape(THINK_END))
# A tail that may still grow into a marker we act on (``<｜…``, ``<|…``; think tags are checked apart).
_PARTIAL_RE = re.compile(r"<(?:[｜|][^<>\n]{0,48})?")


_MARGIN = 64  # longer than any marker, so one split across feeds is still found


def _hold_from(buf: str) -> int:
    """Index from which ``buf`` must be held back because it may be the start of a marker."""
    i = buf.rfind("<")
    if i < 0 or ">" in buf[i:]:
        return len(buf)
    tail = buf[i:]
    if _PARTIAL_RE.fullmatch(tail) or THINK_BEGIN.startswith(tail) or THINK_END.startswith(tail):
        return i
    return len(buf)


@dataclass
class CallDelta:
    """A piece of a streamed tool call: the first piece has ``id`` and ``name``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class _Call:
    """A call the stream has started: where its arguments begin and how much of them was sent."""

    id: str
    name: str | None = None
    done: bool = False
    legacy: bool = False  # ``function<｜tool▁sep｜>name`` + fenced JSON: arguments come whole at the end
    start: int | None = None  # index in the text where the arguments begin
    sent_end: int = 0  # index up to which the arguments were emitted
    used: bool = False  # already matched to a final call (id reuse)


@dataclass
class StreamDelta:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[CallDelta] = field(default_factory=list)
    completion: ParsedCompletion | None = None  # set only by ``finish()``

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning or self.tool_calls or self.completion)


class StreamParser:
    """Incremental parser: ``feed(delta) -> StreamDelta`` while text arrives, then ``finish()``.

    Deltas are provisional (good for showing progress); ``finish().completion`` is the one-shot
    parse of the whole text and is what to keep, with the streamed call ids reused.
    """

    def __init__(self, version: str = "v3.1", *, thinking: bool | None = None, strict: bool = False) -> None:
        self.version = version
        self.strict = strict  # re-raise internal errors instead of skipping a delta (for tests)
        self.thinking = (version == "r1") if thinking is None else thinking
        self.text = ""
        self._state = "reasoning" if self.thinking else "start"
        self._pos = 0  # how much of self.text has been consumed
        self._ws = ""  # trailing whitespace of content, held until we know a tool block does not follow
        self._block_from = 0
        self._calls: list[_Call] = []  # every call the stream started, valid or not
        self._cur: int | None = None  # index into _calls of the call being read
        self._cursor = 0  # position in self.text inside the block
        self._scanned = 0  # text before this (minus a margin) holds no marker the current state looks for
        self._finished = False

    # -- public
    def feed(self, delta: str) -> StreamDelta:
        if self._finished or not delta:
            return StreamDelta()
        text, self.text = self.text, ""
        text += delta  # sole reference: CPython grows the string in place instead of copying it
        self.text = text
        del text
        out = StreamDelta()
        try:
            self._advance(out, final=False)
        except Exception:  # provisional output only: finish() re-parses the whole text
            if self.strict:
                raise
        return out

    def finish(self) -> StreamDelta:
        out = StreamDelta()
        if not self._finished:
            try:
                self._advance(out, final=True)
            except Exception:
                if self.strict:
                    raise
            self._finished = True
        result = parse_completion(self.text, self.version, thinking=self.thinking)
        streamed = [c for c in self._calls if c.name]
        for call in result.tool_calls:  # reuse ids already shown to the consumer, matched in order by name
            for c in streamed:
                if c.name == call.name and not c.used:
                    c.used = True
                    call.id = c.id
                    break
        out.completion = result
        return out

    # -- internals
    def _advance(self, out: StreamDelta, final: bool) -> None:
        for _ in range(10_000):
            before = (self._state, self._pos, self._cursor, self._cur)
            getattr(self, "_on_" + self._state)(out, final)
            if (self._state, self._pos, self._cursor, self._cur) == before:
                return

    def _on_start(self, out: StreamDelta, final: bool) -> None:
        rest = self.text[self._pos:]
        stripped = rest.lstrip()
        if not stripped and not final:
            return
        lead = len(rest) - len(stripped)
        for tag, state in ((THINK_BEGIN, "reasoning"), (THINK_END, "content")):
            if stripped.startswith(tag):
                self._pos += lead + len(tag)
                self._state = state
                return
            if tag.startswith(stripped) and not final:
                return  # may still become the tag
        self._state = "content"

    def _on_reasoning(self, out: StreamDelta, final: bool) -> None:
        rest = self.text[self._pos:]
        if self._pos == 0 and rest.lstrip().startswith(THINK_BEGIN):
            self._pos += len(rest) - len(rest.lstrip()) + len(THINK_BEGIN)
            rest = self.text[self._pos:]
        elif self._pos == 0 and THINK_BEGIN.startswith(rest.lstrip()) and rest.strip() and not final:
            return
        close = rest.find(THINK_END)
        block = BLOCK_START_RE.search(rest)
        if block and (close < 0 or block.start() < close):
            # A tool block inside the reasoning: reasoning if a ``</think>`` follows, calls if the
            # text ends first. Hold it until one of the two is known.
            out.reasoning += rest[: block.start()]
            self._pos += block.start()
            self._state = "held"
            self._scanned = 0
            return
        if close >= 0:
            out.reasoning += rest[:close]
            self._pos += close + len(THINK_END)
            self._state = "content"
            return
        keep = len(rest) if final else _hold_from(rest)
        out.reasoning += rest[:keep]
        self._pos += keep

    def _on_held(self, out: StreamDelta, final: bool) -> None:
        close = self._search(_THINK_END_RE, self._pos)
        if close is not None:
            out.reasoning += self.text[self._pos:close.start()]
            self._pos = close.end()
            self._state = "content"
            self._scanned = 0
        elif final:
            self._state = "content"  # the reasoning never closed: the block holds the calls
            self._scanned = 0
        else:
            self._scanned = len(self.text)

    def _on_content(self, out: StreamDelta, final: bool) -> None:
        rest = self.text[self._pos:]
        block = BLOCK_START_RE.search(rest)
        if block:
            text = rest[: block.start()]
            if text.strip():
                out.content += self._ws + text.rstrip()
            self._ws = ""
            self._pos += block.start()
            self._block_from = self._cursor = self._pos
            self._state = "dsml" if DSML_OPEN_RE.match(rest, block.start()) else "block"
            return
        keep = len(rest) if final else _hold_from(rest)
        text = rest[:keep]
        self._pos += keep
        if final:
            out.content += self._ws + text
            self._ws = ""
            return
        body = text.rstrip()
        if body:
            out.content += self._ws + body
            self._ws = text[len(body):]
        else:
            self._ws += text

    def _search(self, pattern: re.Pattern[str], start: int) -> re.Match[str] | None:
        """``pattern.search`` from ``start``, skipping text already known not to hold a marker (keeps
        long streams linear: each feed scans only what is new, plus a margin for split markers)."""
        return pattern.search(self.text, max(start, self._scanned - _MARGIN))

    def _on_dsml(self, out: StreamDelta, final: bool) -> None:
        close = self._search(DSML_CLOSE_RE, self._cursor)
        if close is None and not final:
            self._scanned = len(self.text)
            return
        calls, _, _, _ = find_tool_calls(self.text[self._block_from:])
        for c in calls:
            idx = len(self._calls)
            self._calls.append(_Call(id=c.id, name=c.name, done=True))
            out.tool_calls.append(CallDelta(index=idx, id=c.id, name=c.name))
            out.tool_calls.append(CallDelta(index=idx, arguments=c.arguments))
        self._cursor = self._pos = len(self.text)
        self._state = "after"

    def _on_block(self, out: StreamDelta, final: bool) -> None:
        text = self.text
        if self._cur is None:
            begin = CALL_BEGIN_RE.search(text, self._cursor)
            end = CALLS_END_RE.search(text, self._cursor)
            if end and (begin is None or end.start() < begin.start()):
                self._cursor = self._pos = end.end()
                self._state = "after"
                return
            if begin is None:
                return
            self._calls.append(_Call(id=new_tool_call_id()))
            self._cur = len(self._calls) - 1
            self._cursor = begin.end()
            self._scanned = 0
            return
        call = self._calls[self._cur]
        close = self._search(CALL_END_RE, self._cursor)
        nxt = self._search(CALL_BEGIN_RE, self._cursor)
        self._scanned = len(text)
        if nxt and (close is None or nxt.start() < close.start()):
            self._cur = None  # this call never closed; give up on it
            self._cursor = nxt.start()
            return
        if call.name is None:
            sep = SEP_RE.search(text, self._cursor)
            if sep is None or (close and sep.start() > close.start()):
                if close:  # a call without a separator: skip it
                    self._cur, self._cursor = None, close.end()
                return
            name = text[self._cursor: sep.start()].strip()
            after = text[sep.end():]
            if name == "function" and not after.lstrip().startswith(("{", "[")):
                nl = after.find("\n")
                if nl < 0:
                    return  # legacy header: wait for the whole name line
                name = after[:nl].strip()
                call.legacy = True
                self._cursor = sep.end() + nl + 1
            else:
                self._cursor = sep.end()
            call.name = name
            self._scanned = 0
            out.tool_calls.append(CallDelta(index=self._cur, id=call.id, name=name))
            return
        start, sent_end = call.start, call.sent_end
        if close is not None:
            sent = text[start:sent_end] if start is not None else ""
            raw = text[self._cursor: close.start()]
            final_args = _unfence(raw) if (call.legacy or raw.lstrip().startswith("`")) else raw.strip()
            if final_args.startswith(sent) and len(final_args) > len(sent):
                out.tool_calls.append(CallDelta(index=self._cur, arguments=final_args[len(sent):]))
            call.done = True
            self._cur = None
            self._cursor = close.end()
            return
        if call.legacy:
            return  # legacy arguments come whole, at the end of the call
        if start is None:
            head = text[self._cursor:]
            lead = len(head) - len(head.lstrip())
            if lead == len(head) or head[lead] == "`":
                return  # nothing yet, or fenced arguments: those come whole at the end
            start = call.start = call.sent_end = sent_end = self._cursor + lead
        tail = text[sent_end:]
        piece = tail[: _hold_from(tail)].rstrip()
        if piece:
            out.tool_calls.append(CallDelta(index=self._cur, arguments=piece))
            call.sent_end = sent_end + len(piece)

    def _on_after(self, out: StreamDelta, final: bool) -> None:
        self._pos = len(self.text)  # text after the block is kept apart (see ParsedCompletion.trailing)
