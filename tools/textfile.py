"""Text files as the editor edits them: decoded for editing, encoded back byte-compatibly.

Files keep their encoding (UTF-8, UTF-8 with BOM, UTF-16, or Latin-1 as the last resort) and their
line endings: CRLF files are edited as LF text and written back as CRLF. Binary files are refused.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from agentkit.errors import ToolError

__all__ = ["TextFile", "decode_text", "encode_text", "line_count", "numbered"]


@dataclass
class TextFile:
    """A decoded text file and how to write it back byte-compatibly."""

    text: str  # with "\n" line endings
    encoding: str = "utf-8"
    bom: bytes = b""
    newline: str = "\n"


def decode_text(data: bytes, path: str = "") -> TextFile:
    """Decode file bytes for editing; raises ``ToolError`` for binary files."""
    bom = b""
    for mark, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                      (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(mark):
            bom, encoding = mark, enc
            break
    else:
        encoding = ""
    body = data[len(bom):]
    if not encoding:
        if b"\x00" in body[:8192]:
            raise ToolError(f"{path or 'the file'} is a binary file; the editor only handles text. "
                            "Inspect it with the bash tool (e.g. `file`, `xxd | head`).")
        try:
            text = body.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            text = body.decode("latin-1")
            encoding = "latin-1"
            ctrl = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\t\n\r\f\v\x1b")
            if ctrl > max(8, len(text[:8192]) // 100):
                raise ToolError(f"{path or 'the file'} looks binary (not valid UTF-8 and full of control "
                                "bytes); the editor only handles text.") from None
    else:
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError as e:
            raise ToolError(f"{path or 'the file'} starts with a {encoding} byte-order mark but does not "
                            "decode as such; inspect it with the bash tool.") from e
    crlf, lf = text.count("\r\n"), text.count("\n")
    newline = "\r\n" if crlf and crlf * 2 >= lf else "\n"
    if newline == "\r\n":
        text = text.replace("\r\n", "\n")
    return TextFile(text=text, encoding=encoding, bom=bom, newline=newline)


def encode_text(tf: TextFile, text: str) -> bytes:
    """Encode edited ``text`` the way the original file was encoded."""
    if tf.newline == "\r\n":
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    try:
        return tf.bom + text.encode(tf.encoding)
    except UnicodeEncodeError as e:
        raise ToolError(f"The new text contains characters that cannot be written in this file's "
                        f"{tf.encoding} encoding ({e.object[e.start:e.end]!r}); use only characters "
                        "that encoding supports.") from e


def numbered(text: str, start: int = 1) -> str:
    """``cat -n`` style lines."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    return "\n".join(f"{i:6}\t{line}" for i, line in enumerate(lines, start=start))


def line_count(text: str) -> int:
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)
