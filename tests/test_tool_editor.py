"""str_replace_editor against real sandboxes (local, and Docker when the engine and image exist)."""

from __future__ import annotations

import posixpath
import re
from typing import Any

import pytest

from agentkit.tools.base import ToolContext
from agentkit.tools.editor import StrReplaceEditor, decode_text, encode_text

CODE = """def area(w, h):
    return w * h


def perimeter(w, h):
    return 2 * (w + h)


def describe(w, h):
    return f"{w}x{h}"
"""


@pytest.fixture
def ed() -> StrReplaceEditor:
    return StrReplaceEditor()


@pytest.fixture
def ctx(any_sandbox: Any) -> ToolContext:
    return ToolContext(sandbox=any_sandbox)


async def put(ctx: ToolContext, rel: str, data: bytes | str) -> None:
    await ctx.sandbox.write_file(rel, data)


async def get(ctx: ToolContext, rel: str) -> bytes:
    return await ctx.sandbox.read_file(rel)


async def test_create_view_and_absolute_paths(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    obs = await ed({"command": "create", "path": "pkg/shapes.py", "file_text": CODE}, ctx)
    assert not obs.is_error and "File created successfully" in obs.text
    assert await get(ctx, "pkg/shapes.py") == CODE.encode()
    full = posixpath.join(ctx.sandbox.workspace, "pkg/shapes.py")
    view = await ed({"command": "view", "path": full}, ctx)
    assert view.text.startswith(f"Here's the result of running `cat -n` on {full}:\n")
    assert "     1\tdef area(w, h):\n     2\t    return w * h\n" in view.text
    part = await ed({"command": "view", "path": "pkg/shapes.py", "view_range": [5, 6]}, ctx)
    assert "     5\tdef perimeter(w, h):\n     6\t    return 2 * (w + h)" in part.text
    assert "     4\t" not in part.text and "     7\t" not in part.text
    tail = await ed({"command": "view", "path": "pkg/shapes.py", "view_range": [9, -1]}, ctx)
    assert "    10\t    return f\"{w}x{h}\"" in tail.text
    bad = await ed({"command": "view", "path": "pkg/shapes.py", "view_range": [8, 99]}, ctx)
    assert bad.is_error and "between 8 and 10" in bad.text


async def test_create_refuses_to_overwrite(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "a.txt", "keep me\n")
    obs = await ed({"command": "create", "path": "a.txt", "file_text": "new"}, ctx)
    assert obs.is_error and "already exists" in obs.text and "str_replace" in obs.text
    assert await get(ctx, "a.txt") == b"keep me\n"


async def test_directory_view_is_two_levels_without_hidden_or_build(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    for rel in ("src/app/main.py", "src/app/deep/too_deep.py", "README.md", ".git/config",
                "node_modules/x/index.js", "src/__pycache__/m.pyc", ".hidden"):
        await put(ctx, rel, "x")
    obs = await ed({"command": "view", "path": "."}, ctx)
    root = ctx.sandbox.workspace.rstrip("/")
    assert f"{root}/README.md" in obs.text and f"{root}/src/" in obs.text and f"{root}/src/app/" in obs.text
    assert "main.py" not in obs.text  # third level
    for hidden in (".git", "node_modules", "__pycache__", ".hidden"):
        assert hidden not in obs.text.split("build folders:")[1]


async def test_str_replace_exactly_once_with_snippet(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "shapes.py", CODE)
    obs = await ed({"command": "str_replace", "path": "shapes.py",
                    "old_str": "    return 2 * (w + h)", "new_str": "    # both pairs of sides\n    return 2 * w + 2 * h"}, ctx)
    assert not obs.is_error, obs.text
    assert "has been edited" in obs.text
    assert "     6\t    # both pairs of sides\n     7\t    return 2 * w + 2 * h" in obs.text
    assert "     2\t    return w * h" in obs.text  # context lines before the edit
    assert (await get(ctx, "shapes.py")).decode() == CODE.replace(
        "    return 2 * (w + h)", "    # both pairs of sides\n    return 2 * w + 2 * h")


async def test_str_replace_multiple_matches_lists_lines(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "shapes.py", CODE)
    obs = await ed({"command": "str_replace", "path": "shapes.py", "old_str": "(w, h):", "new_str": "(a, b):"}, ctx)
    assert obs.is_error and "occurs 3 times" in obs.text and "lines 1, 5, 9" in obs.text
    assert await get(ctx, "shapes.py") == CODE.encode()


async def test_str_replace_no_match_shows_near_matches(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "shapes.py", CODE)
    obs = await ed({"command": "str_replace", "path": "shapes.py",
                    "old_str": "def perimeter(width, h):\n    return 2 * (width + h)", "new_str": "x"}, ctx)
    assert obs.is_error and "did not appear verbatim" in obs.text
    assert "lines 5-6" in obs.text and "     5\tdef perimeter(w, h):" in obs.text
    ws = await ed({"command": "str_replace", "path": "shapes.py",
                   "old_str": "def area(w, h):\n  return w * h", "new_str": "x"}, ctx)
    assert ws.is_error and "line 1 matches except for whitespace" in ws.text
    none = await ed({"command": "str_replace", "path": "shapes.py", "old_str": "zzzz qqqq", "new_str": "x"}, ctx)
    assert none.is_error and "Nothing similar" in none.text


async def test_str_replace_empty_new_str_deletes(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "shapes.py", CODE)
    obs = await ed({"command": "str_replace", "path": "shapes.py",
                    "old_str": "\n\ndef describe(w, h):\n    return f\"{w}x{h}\"\n"}, ctx)
    assert not obs.is_error
    assert (await get(ctx, "shapes.py")).decode() == CODE.split("\n\n\ndef describe")[0] + "\n"


async def test_insert_after_line_and_at_top(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "f.txt", "one\ntwo\nthree\n")
    obs = await ed({"command": "insert", "path": "f.txt", "insert_line": 2, "new_str": "two and a half"}, ctx)
    assert not obs.is_error and "     3\ttwo and a half" in obs.text
    assert await get(ctx, "f.txt") == b"one\ntwo\ntwo and a half\nthree\n"
    await ed({"command": "insert", "path": "f.txt", "insert_line": 0, "new_str": "zero\n"}, ctx)
    assert await get(ctx, "f.txt") == b"zero\none\ntwo\ntwo and a half\nthree\n"
    await ed({"command": "insert", "path": "f.txt", "insert_line": 5, "new_str": "four"}, ctx)
    assert await get(ctx, "f.txt") == b"zero\none\ntwo\ntwo and a half\nthree\nfour\n"
    bad = await ed({"command": "insert", "path": "f.txt", "insert_line": 9, "new_str": "x"}, ctx)
    assert bad.is_error and "between 0 and 6" in bad.text


async def test_insert_after_last_line_without_newline(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "g.txt", "a\nb")
    await ed({"command": "insert", "path": "g.txt", "insert_line": 2, "new_str": "c"}, ctx)
    assert await get(ctx, "g.txt") == b"a\nb\nc"


async def test_multi_level_undo(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "u.txt", "v0\n")
    await ed({"command": "str_replace", "path": "u.txt", "old_str": "v0", "new_str": "v1"}, ctx)
    await ed({"command": "str_replace", "path": "u.txt", "old_str": "v1", "new_str": "v2"}, ctx)
    await ed({"command": "insert", "path": "u.txt", "insert_line": 1, "new_str": "extra"}, ctx)
    assert await get(ctx, "u.txt") == b"v2\nextra\n"
    first = await ed({"command": "undo_edit", "path": "u.txt"}, ctx)
    assert not first.is_error and "2 earlier edits can still be undone" in first.text
    assert await get(ctx, "u.txt") == b"v2\n"
    await ed({"command": "undo_edit", "path": "u.txt"}, ctx)
    assert await get(ctx, "u.txt") == b"v1\n"
    await ed({"command": "undo_edit", "path": "u.txt"}, ctx)
    assert await get(ctx, "u.txt") == b"v0\n"
    none = await ed({"command": "undo_edit", "path": "u.txt"}, ctx)
    assert none.is_error and "nothing to undo" in none.text


async def test_undo_of_create_removes_the_file(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await ed({"command": "create", "path": "tmp_new.txt", "file_text": "hi\n"}, ctx)
    obs = await ed({"command": "undo_edit", "path": "tmp_new.txt"}, ctx)
    assert not obs.is_error and "removed" in obs.text
    assert (await ed({"command": "view", "path": "tmp_new.txt"}, ctx)).is_error


async def test_crlf_and_encoding_are_preserved(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await put(ctx, "win.txt", b"first line\r\nsecond line\r\nthird\r\n")
    obs = await ed({"command": "str_replace", "path": "win.txt",
                    "old_str": "first line\nsecond line", "new_str": "1st line\n2nd line"}, ctx)
    assert not obs.is_error, obs.text
    assert await get(ctx, "win.txt") == b"1st line\r\n2nd line\r\nthird\r\n"
    latin = "caf\u00e9 cr\u00e8me\nna\u00efve\n".encode("latin-1")
    await put(ctx, "latin.txt", latin)
    await ed({"command": "str_replace", "path": "latin.txt", "old_str": "na\u00efve", "new_str": "na\u00efvet\u00e9"}, ctx)
    assert await get(ctx, "latin.txt") == "caf\u00e9 cr\u00e8me\nna\u00efvet\u00e9\n".encode("latin-1")
    bom = b"\xef\xbb\xbfkey = 1\n"
    await put(ctx, "bom.toml", bom)
    await ed({"command": "str_replace", "path": "bom.toml", "old_str": "key = 1", "new_str": "key = 2"}, ctx)
    assert await get(ctx, "bom.toml") == b"\xef\xbb\xbfkey = 2\n"
    u16 = "\ufeffhello\r\nworld\r\n".encode("utf-16-le")
    await put(ctx, "u16.txt", u16)
    await ed({"command": "str_replace", "path": "u16.txt", "old_str": "world", "new_str": "there"}, ctx)
    assert (await get(ctx, "u16.txt")).decode("utf-16-le") == "\ufeffhello\r\nthere\r\n"


async def test_binary_files_are_refused(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    blob = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    await put(ctx, "img.png", blob)
    for args in ({"command": "view", "path": "img.png"},
                 {"command": "str_replace", "path": "img.png", "old_str": "PNG", "new_str": "JPG"}):
        obs = await ed(args, ctx)
        assert obs.is_error and "binary" in obs.text
    assert await get(ctx, "img.png") == blob


async def test_paths_outside_the_workspace_are_refused(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    for path in ("/etc/passwd", "../outside.txt", "sub/../../x"):
        obs = await ed({"command": "view", "path": path}, ctx)
        assert obs.is_error and "outside the workspace" in obs.text
    obs = await ed({"command": "create", "path": "/tmp/agentkit-escape.txt", "file_text": "x"}, ctx)
    assert obs.is_error and "outside the workspace" in obs.text


async def test_helpful_errors(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    missing = await ed({"command": "str_replace", "path": "nope.py", "old_str": "a", "new_str": "b"}, ctx)
    assert missing.is_error and "does not exist" in missing.text and "create" in missing.text
    nested = await ed({"command": "view", "path": "no/such/dir/f.py"}, ctx)
    assert nested.is_error and "does not exist" in nested.text
    unknown = await ed({"command": "delete", "path": "x"}, ctx)
    assert unknown.is_error and "view, create, str_replace, insert, undo_edit" in unknown.text
    await put(ctx, "d/f.txt", "x")
    assert "is a directory" in (await ed({"command": "str_replace", "path": "d", "old_str": "x"}, ctx)).text
    no_text = await ed({"command": "create", "path": "n.txt"}, ctx)
    assert no_text.is_error and "file_text" in no_text.text


def test_decode_encode_round_trip() -> None:
    for raw in (b"plain\n", b"a\r\nb\r\n", b"\xef\xbb\xbfx\n", "\u00e9\n".encode("latin-1"), b""):
        tf = decode_text(raw)
        assert encode_text(tf, tf.text) == raw


def test_schema_is_the_fixed_interface() -> None:
    props = StrReplaceEditor.parameters["properties"]
    assert list(props) == ["command", "path", "file_text", "old_str", "new_str", "insert_line", "view_range"]
    assert props["command"]["enum"] == ["view", "create", "str_replace", "insert", "undo_edit"]
    assert StrReplaceEditor.parameters["required"] == ["command", "path"]


async def test_symlink_out_of_the_workspace_is_refused(ed: StrReplaceEditor, ctx: ToolContext) -> None:
    await ctx.sandbox.run("ln -s /etc/hostname escape.txt")
    for args in ({"command": "view", "path": "escape.txt"},
                 {"command": "str_replace", "path": "escape.txt", "old_str": "a", "new_str": "b"}):
        obs = await ed(args, ctx)
        assert obs.is_error and "outside the workspace" in obs.text


async def test_long_file_view_is_clipped_with_a_hint(ctx: ToolContext) -> None:
    await put(ctx, "big.txt", "".join(f"line number {i}\n" for i in range(1, 3001)))
    obs = await StrReplaceEditor(max_view_chars=2000)({"command": "view", "path": "big.txt"}, ctx)
    assert not obs.is_error and "File too long to show at once" in obs.text and "of 3000 shown" in obs.text
    assert "     1\tline number 1\n" in obs.text and "line number 3000" not in obs.text
    hint = re.search(r"view_range, e.g. \[(\d+), (\d+)\]", obs.text)
    assert hint
    nxt = await StrReplaceEditor()({"command": "view", "path": "big.txt",
                                    "view_range": [int(hint.group(1)), int(hint.group(2))]}, ctx)
    assert f"{int(hint.group(1)):6}\tline number {hint.group(1)}" in nxt.text
