"""The ``str_replace_editor`` tool: view, create and edit files the way SWE-agent/OpenHands models expect.

Commands: ``view`` (a file with line numbers, or a directory two levels deep), ``create``,
``str_replace`` (the old text must occur exactly once), ``insert`` (after a line) and
``undo_edit`` (per file, several levels). Everything goes through the sandbox file API, so the
tool behaves the same locally and in Docker.

Files keep their encoding and line endings (``textfile``); binary files are refused.

Files over ``max_file_bytes`` (the sandbox's read cap, 8 MiB) are not read whole: ``view`` with
``view_range`` reads just those lines where the sandbox can (``read_lines``), and the rest is left
to the shell. The "most similar text" hint after a near-miss ``str_replace`` does bounded work
(``near_matches``) in a worker thread, so it never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
from typing import Any

from agentkit.errors import SandboxError, ToolError
from agentkit.sandboxes.base import DirEntry
from agentkit.sandboxes.safefs import MAX_READ_BYTES, FileTooLarge
from agentkit.tools.base import Observation, ToolContext
from agentkit.tools.near_match import NearMatches, near_matches
from agentkit.tools.textfile import TextFile, decode_text, encode_text, line_count, numbered

__all__ = ["NearMatches", "StrReplaceEditor", "TextFile", "decode_text", "encode_text", "near_matches"]

SNIPPET_LINES = 4
MAX_VIEW_CHARS = 16_000
MAX_HISTORY = 10
SKIP_DIRS = {"node_modules", "__pycache__", "build", "dist", "venv", "site-packages", "target",
             "htmlcov", "coverage"}
COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


class StrReplaceEditor:
    """View, create and edit files in the sandbox workspace."""

    name = "str_replace_editor"
    description = (
        "View, create and edit files in the workspace.\n"
        "* `view`: a file is shown with line numbers (like `cat -n`; use `view_range` for part of a long "
        "file); a directory is listed two levels deep, without hidden and build folders.\n"
        "* `create`: write a new file with `file_text` (refused if the file exists; edit it instead).\n"
        "* `str_replace`: replace `old_str` with `new_str` (empty `new_str` deletes). `old_str` must "
        "match exactly one place in the file, whitespace and indentation included; include enough "
        "surrounding lines to make it unique.\n"
        "* `insert`: insert `new_str` after line `insert_line` (0 inserts at the top).\n"
        "* `undo_edit`: revert the last edit made to the file at `path` (repeatable).\n"
        "Paths are absolute inside the workspace or relative to its root. After each edit a snippet of "
        "the result is shown; check it."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "enum": list(COMMANDS),
                        "description": "The operation: view, create, str_replace, insert or undo_edit."},
            "path": {"type": "string",
                     "description": "File or directory, absolute (inside the workspace) or relative to the workspace root."},
            "file_text": {"type": "string", "description": "`create` only: the content of the new file."},
            "old_str": {"type": "string",
                        "description": "`str_replace` only: the exact text to replace; it must occur exactly once."},
            "new_str": {"type": "string",
                        "description": "`str_replace`: the replacement (omit or empty to delete); `insert`: the text to insert."},
            "insert_line": {"type": "integer", "minimum": 0,
                            "description": "`insert` only: the line number after which `new_str` is inserted (0 = top of file)."},
            "view_range": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
                           "description": "`view` of a file only: [first, last] line to show, 1-based; last = -1 means to the end."},
        },
        "required": ["command", "path"],
    }
    parallel_safe = False

    def __init__(self, *, max_view_chars: int = MAX_VIEW_CHARS, max_history: int = MAX_HISTORY,
                 max_file_bytes: int = MAX_READ_BYTES) -> None:
        self.max_view_chars = max_view_chars
        self.max_history = max_history
        self.max_file_bytes = max_file_bytes  # bigger files are not read whole (the sandbox caps reads too)

    # -- paths and files ------------------------------------------------------------------------
    @staticmethod
    def _resolve(ctx: ToolContext, path: str) -> tuple[str, str]:
        """(absolute path as the sandbox shows it, path relative to the workspace)."""
        root = posixpath.normpath(str(ctx.sandbox.workspace))
        raw = path.strip()
        if not raw:
            raise ToolError("Give a `path` (absolute inside the workspace, or relative to it).")
        full = posixpath.normpath(raw if raw.startswith("/") else posixpath.join(root, raw))
        if full != root and not full.startswith(root.rstrip("/") + "/"):
            raise ToolError(f"{path} is outside the workspace {root}; use a path inside it.")
        rel = posixpath.relpath(full, root)
        return full, rel

    @staticmethod
    async def _entry(ctx: ToolContext, rel: str) -> DirEntry | None:
        """What ``rel`` is (kind "file", "dir", "other"; a symlink as what it points to), or None.

        Only a hint, since the sandbox can change it at any moment: the file API itself refuses what
        must be refused when it opens the file.
        """
        if rel == ".":
            return DirEntry(name=".", kind="dir")
        parent, base = posixpath.split(rel)
        try:
            entries = await ctx.sandbox.list_dir(parent or ".")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except SandboxError as e:
            if "outside" in str(e):
                raise ToolError(str(e)) from e
            return None
        for e in entries:
            if e.name == base:
                if e.kind == "symlink":  # follow it: is it a file or a directory?
                    try:
                        await ctx.sandbox.list_dir(rel)
                        return DirEntry(name=base, kind="dir")
                    except (OSError, SandboxError):
                        return DirEntry(name=base, kind="file")
                return e
        return None

    async def _kind(self, ctx: ToolContext, rel: str) -> str | None:
        entry = await self._entry(ctx, rel)
        return entry.kind if entry else None

    @staticmethod
    def _special(full: str) -> ToolError:
        return ToolError(f"{full} is not a regular file (a named pipe, socket or device); the editor only opens "
                         "regular files and directories. Inspect it with the shell (`ls -l`, `file`).")

    async def _read_raw(self, ctx: ToolContext, full: str, rel: str, entry: DirEntry) -> bytes:
        """The file's bytes; ``FileTooLarge`` (checked here for every sandbox) over ``max_file_bytes``."""
        if entry.kind == "other":
            raise self._special(full)
        if entry.size > self.max_file_bytes:
            raise FileTooLarge(full, entry.size, self.max_file_bytes)
        try:
            return await ctx.sandbox.read_file(rel)
        except FileTooLarge:
            raise
        except (OSError, SandboxError) as e:
            raise ToolError(f"Cannot read {full}: {e}.") from e

    async def _write(self, ctx: ToolContext, full: str, rel: str, data: bytes) -> None:
        try:
            await ctx.sandbox.write_file(rel, data)
        except (OSError, SandboxError) as e:
            raise ToolError(f"Cannot write {full}: {e}.") from e

    def _history(self, ctx: ToolContext, full: str) -> list[bytes | None]:
        hist: dict[str, list[bytes | None]] = ctx.data.setdefault("editor_history", {})
        return hist.setdefault(full, [])

    def _remember(self, ctx: ToolContext, full: str, before: bytes | None) -> None:
        h = self._history(ctx, full)
        h.append(before)
        del h[:-self.max_history]

    @staticmethod
    def _snippet(text: str, first: int, last: int) -> str:
        """Lines ``first``..``last`` (1-based) plus context, numbered."""
        lines = text.split("\n")
        if text.endswith("\n"):
            lines = lines[:-1]
        lo = max(1, first - SNIPPET_LINES)
        hi = min(len(lines), last + SNIPPET_LINES)
        return "\n".join(f"{i:6}\t{lines[i - 1]}" for i in range(lo, hi + 1))

    # -- the tool call --------------------------------------------------------------------------
    async def __call__(self, args: dict[str, Any], ctx: ToolContext) -> Observation:
        command = args.get("command")
        if command not in COMMANDS:
            return Observation(is_error=True, text=f"Unknown command {command!r}; use one of: {', '.join(COMMANDS)}.")
        if ctx.sandbox is None:
            return Observation(is_error=True, text="No sandbox is attached to this run, so files cannot be edited.")
        try:
            full, rel = self._resolve(ctx, str(args.get("path") or ""))
            handler = getattr(self, f"_{command}")
            return await handler(ctx, full, rel, args)
        except ToolError as e:
            return Observation(is_error=True, text=str(e))
        except SandboxError as e:
            return Observation(is_error=True, text=str(e))

    async def _view(self, ctx: ToolContext, full: str, rel: str, args: dict[str, Any]) -> Observation:
        entry = await self._entry(ctx, rel)
        if entry is None:
            raise ToolError(f"The path {full} does not exist. Check it, e.g. view the parent directory.")
        if entry.kind == "dir":
            if args.get("view_range"):
                raise ToolError("`view_range` only applies to files, not directories.")
            return Observation(text=await self._tree(ctx, full, rel))
        rng = args.get("view_range")
        if rng is not None and not (isinstance(rng, list) and len(rng) == 2
                                    and all(isinstance(x, int) and not isinstance(x, bool) for x in rng)):
            raise ToolError("`view_range` must be two integers [first, last], e.g. [10, 40].")
        try:
            tf = decode_text(await self._read_raw(ctx, full, rel, entry), full)
        except FileTooLarge as e:
            return await self._view_part(ctx, full, rel, rng, e.size)
        text = tf.text
        n = line_count(text)
        first, last = 1, n
        if rng is not None:
            first, last = rng
            if last == -1:
                last = n
            if not 1 <= first <= max(n, 1):
                raise ToolError(f"Invalid `view_range` {rng}: the first line must be between 1 and {n}.")
            if last < first or last > n:
                raise ToolError(f"Invalid `view_range` {rng}: the last line must be between {first} and {n} "
                                "(or -1 for the end of the file).")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines = lines[:-1]
        shown = "\n".join(f"{i:6}\t{lines[i - 1]}" for i in range(first, last + 1)) if n else ""
        note = ""
        if len(shown) > self.max_view_chars:
            cut = shown[: self.max_view_chars]
            cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
            shown_last = first + cut.count("\n")
            shown = cut
            note = (f"\n[File too long to show at once: lines {first}-{shown_last} of {n} shown. "
                    f"Use view_range, e.g. [{shown_last + 1}, {min(n, shown_last + 200)}], to see more, or "
                    "search it with `grep -n` in bash.]")
        header = f"Here's the result of running `cat -n` on {full}" + (
            f" (lines {first}-{last} of {n})" if rng is not None else "") + ":\n"
        if n == 0:
            return Observation(text=f"{full} is empty.")
        return Observation(text=header + shown + note, data={"path": full, "lines": n})

    async def _view_part(self, ctx: ToolContext, full: str, rel: str, rng: list[int] | None,
                         size: int) -> Observation:
        """``view_range`` of a file too big to read whole: only those lines are read (where the sandbox can)."""
        reader = getattr(ctx.sandbox, "read_lines", None)
        big = f"{full} is {_size(size)}, more than the {_size(self.max_file_bytes)} the editor reads whole."
        if rng is None or reader is None:
            how = "View part of it with `view_range`, e.g. [1, 100], or search it" if reader else "Read it"
            raise ToolError(f"{big} {how} with the shell (`grep -n PATTERN`, `sed -n '100,200p'`, `head`).")
        first, last = rng
        if first < 1 or (last != -1 and last < first):
            raise ToolError(f"Invalid `view_range` {rng}: give [first, last] with 1 <= first <= last (last = -1: "
                            "to the end).")
        try:
            part = await reader(rel, first, last, max_bytes=self.max_view_chars * 4)
        except (OSError, SandboxError) as e:
            raise ToolError(f"Cannot read {full}: {e}.") from e
        data = part.data
        if not data:
            raise ToolError(f"Invalid `view_range` {rng}: {full} has only {part.total} lines.")
        if part.cut and b"\n" in data:  # whole lines only
            data = data[:data.rfind(b"\n") + 1]
        shown, cut = numbered(decode_text(data, full).text, first), part.cut
        if len(shown) > self.max_view_chars:
            shown, cut = shown[: self.max_view_chars], True
            shown = shown[: shown.rfind("\n")] if "\n" in shown else shown
        shown_last = first + shown.count("\n")
        more = "" if not cut else (f"\n[Only lines {first}-{shown_last} shown; continue with view_range "
                                   f"[{shown_last + 1}, {shown_last + 200}], or use the shell.]")
        return Observation(text=(f"Here's the result of running `cat -n` on {full} (lines {first}-{shown_last}; the "
                                 f"file is {_size(size)}, so only these lines were read):\n{shown}{more}"),
                           data={"path": full, "first": first, "last": shown_last})

    async def _tree(self, ctx: ToolContext, full: str, rel: str) -> str:
        out: list[str] = []

        async def walk(rel_dir: str, shown_dir: str, depth: int) -> None:
            try:
                entries = await ctx.sandbox.list_dir(rel_dir)
            except (OSError, SandboxError):
                return
            for e in entries:
                if e.name.startswith(".") or e.name in SKIP_DIRS or e.name.endswith(".egg-info"):
                    continue
                child_rel = posixpath.join(rel_dir, e.name) if rel_dir != "." else e.name
                child_shown = posixpath.join(shown_dir, e.name)
                out.append(child_shown + ("/" if e.kind == "dir" else ""))
                if e.kind == "dir" and depth < 2:
                    await walk(child_rel, child_shown, depth + 1)

        await walk(rel, full, 1)
        listing = "\n".join(out) if out else "(empty directory)"
        return (f"Here's the files and directories up to 2 levels deep in {full}, excluding hidden items "
                f"and build folders:\n{full}/\n{listing}")

    async def _create(self, ctx: ToolContext, full: str, rel: str, args: dict[str, Any]) -> Observation:
        text = args.get("file_text")
        if text is None:
            raise ToolError("`create` needs `file_text`, the content of the new file.")
        kind = await self._kind(ctx, rel)
        if kind == "dir":
            raise ToolError(f"{full} is a directory; give a file path to create.")
        if kind is not None:
            raise ToolError(f"File already exists at {full}; `create` never overwrites. Use `str_replace` "
                            "to edit it, or view it first.")
        data = str(text).encode("utf-8")
        await self._write(ctx, full, rel, data)
        self._remember(ctx, full, None)
        n = line_count(str(text))
        return Observation(text=f"File created successfully at: {full} ({n} line{'s' if n != 1 else ''}).",
                           data={"path": full, "lines": n})

    async def _load_for_edit(self, ctx: ToolContext, full: str, rel: str) -> tuple[bytes, TextFile]:
        entry = await self._entry(ctx, rel)
        if entry is None:
            raise ToolError(f"The file {full} does not exist; use `create` to make a new file.")
        if entry.kind == "dir":
            raise ToolError(f"{full} is a directory; edit commands need a file path.")
        try:
            raw = await self._read_raw(ctx, full, rel, entry)
        except FileTooLarge as e:
            raise ToolError(f"{full} is {_size(e.size)}, more than the {_size(self.max_file_bytes)} the editor "
                            "edits; change it with the shell instead (e.g. `sed -i`, or a short script).") from e
        return raw, decode_text(raw, full)

    async def _str_replace(self, ctx: ToolContext, full: str, rel: str, args: dict[str, Any]) -> Observation:
        old = args.get("old_str")
        if old is None or old == "":
            raise ToolError("`str_replace` needs a non-empty `old_str` (the exact text to replace).")
        new = args.get("new_str") or ""
        old, new = str(old).replace("\r\n", "\n"), str(new).replace("\r\n", "\n")
        raw, tf = await self._load_for_edit(ctx, full, rel)
        text = tf.text
        count = text.count(old)
        if count == 0:  # the hint is CPU work: off the event loop
            raise ToolError(await asyncio.to_thread(self._no_match, full, text, old))
        if count > 1:
            starts, i = [], text.find(old)
            while i != -1:
                starts.append(text.count("\n", 0, i) + 1)
                i = text.find(old, i + 1)
            raise ToolError(f"No replacement was performed: `old_str` occurs {count} times in {full}, at lines "
                            f"{', '.join(map(str, starts))}. Include more surrounding lines in `old_str` so it "
                            "matches exactly one place.")
        pos = text.find(old)
        new_text = text[:pos] + new + text[pos + len(old):]
        await self._write(ctx, full, rel, encode_text(tf, new_text))
        self._remember(ctx, full, raw)
        first = text.count("\n", 0, pos) + 1
        last = first + new.count("\n")
        return Observation(
            text=(f"The file {full} has been edited. Here's the result of running `cat -n` on a snippet of "
                  f"{full}:\n{self._snippet(new_text, first, last)}\n"
                  "Review the changes and make sure they are as expected. Edit the file again if necessary."),
            data={"path": full, "line": first})

    @staticmethod
    def _no_match(full: str, text: str, old: str) -> str:
        """The error for an ``old_str`` not found, with the nearest text; bounded (``near_matches``)."""
        msg = f"No replacement was performed: `old_str` did not appear verbatim in {full}."
        found = near_matches(text, old)
        if found.whitespace_line is not None:
            return msg + (f" The text at line {found.whitespace_line} matches except for whitespace/indentation; "
                          "copy it exactly (view the file to see the exact indentation).")
        if found.similar:
            msg += " The most similar text in the file:"
            for r, n, chunk in found.similar:
                body = "\n".join(f"{n + j:6}\t{line}" for j, line in enumerate(chunk.split("\n")))
                last = n + chunk.count("\n")
                msg += f"\n--- lines {n}-{last} ({int(r * 100)}% similar):\n{body}"
            msg += "\nView the file and copy `old_str` exactly."
        else:
            msg += " Nothing similar was found; view the file to check its current content."
        if not found.complete:
            where = f"lines 1-{found.compared_to} and those" if found.compared_to else "only the lines"
            msg += (f" (Too long to compare everywhere: {where} near lines of `old_str` were compared; "
                    "`grep -n` a distinctive line of it in bash.)")
        return msg

    async def _insert(self, ctx: ToolContext, full: str, rel: str, args: dict[str, Any]) -> Observation:
        line = args.get("insert_line")
        new = args.get("new_str")
        if line is None or isinstance(line, bool) or not isinstance(line, int):
            raise ToolError("`insert` needs `insert_line`, the line number after which to insert (0 = top).")
        if new is None:
            raise ToolError("`insert` needs `new_str`, the text to insert.")
        new = str(new).replace("\r\n", "\n")
        raw, tf = await self._load_for_edit(ctx, full, rel)
        text = tf.text
        n = line_count(text)
        if not 0 <= line <= n:
            raise ToolError(f"Invalid `insert_line` {line}: it must be between 0 and {n} (the file has {n} lines).")
        lines = text.split("\n")
        offset = sum(len(x) + 1 for x in lines[:line])
        block = new if new.endswith("\n") else new + "\n"
        if line == n and text and not text.endswith("\n"):  # after a last line with no newline
            new_text = text + "\n" + block.rstrip("\n")
        else:
            new_text = text[:offset] + block + text[offset:]
        await self._write(ctx, full, rel, encode_text(tf, new_text))
        self._remember(ctx, full, raw)
        first = line + 1
        last = line + max(1, line_count(block))
        return Observation(
            text=(f"The file {full} has been edited. Here's the result of running `cat -n` on a snippet of the "
                  f"edited file:\n{self._snippet(new_text, first, last)}\n"
                  "Review the changes and make sure they are as expected (correct indentation, no duplicate "
                  "lines). Edit the file again if necessary."),
            data={"path": full, "line": first})

    async def _undo_edit(self, ctx: ToolContext, full: str, rel: str, args: dict[str, Any]) -> Observation:
        hist = self._history(ctx, full)
        if not hist:
            raise ToolError(f"No edit history for {full}: there is nothing to undo.")
        before = hist.pop()
        if before is None:  # the last edit created the file: undo removes it
            res = await ctx.sandbox.run(f"rm -f -- {shlex.quote(full)}", timeout=30)
            if res.exit_code != 0:
                hist.append(before)
                raise ToolError(f"Could not remove {full} to undo its creation: {res.output.strip()}")
            return Observation(text=f"Undid the creation of {full}: the file was removed.", data={"path": full})
        await self._write(ctx, full, rel, before)
        tf = decode_text(before, full)
        left = len(hist)
        return Observation(
            text=(f"Last edit to {full} undone successfully ({left} earlier edit{'s' if left != 1 else ''} can "
                  f"still be undone). Here's the result of running `cat -n` on {full}:\n"
                  + self._clip(numbered(tf.text))),
            data={"path": full, "undo_left": left})

    def _clip(self, text: str) -> str:
        if len(text) <= self.max_view_chars:
            return text
        cut = text[: self.max_view_chars]
        return cut[: cut.rfind("\n")] + "\n[... truncated; use `view` with view_range to see the rest]"
