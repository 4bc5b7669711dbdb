"""Turning a command's raw bytes into what a model should read.

Terminal programs emit colour codes, carriage-return progress bars and, sometimes, invalid
UTF-8; a model wants plain text of bounded size. ``OutputCapture`` keeps a head and a rolling
tail in memory (so a 1 GB print costs a few hundred KB), while ``full`` keeps up to
``full_limit`` bytes so the complete output can be saved where the model can read it.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST), other two-byte escapes, and 8-bit CSI.
_ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# Control characters other than tab and newline (\r is handled separately).
_CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """Remove escape sequences and stray control characters; collapse ``\\r`` redraws."""
    text = _ANSI_RE.sub("", text)
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        # A progress bar redraws its line with \r: keep only what was finally shown.
        lines = []
        for line in text.split("\n"):
            if "\r" in line:
                parts = [p for p in line.split("\r") if p]
                line = parts[-1] if parts else ""
            lines.append(line)
        text = "\n".join(lines)
    return _CTRL_RE.sub("", text)


def clean(data: bytes) -> str:
    """Bytes to model-readable text: invalid UTF-8 replaced (never raised), ANSI stripped."""
    return strip_ansi(data.decode("utf-8", errors="replace"))


class OutputCapture:
    """Collects a command's output with bounded memory: head, rolling tail, optional full copy."""

    def __init__(self, cap: int, full_limit: int) -> None:
        self.cap = max(cap, 64)
        self.head_limit = self.cap // 2
        self.tail_limit = self.cap - self.head_limit
        self.full_limit = full_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.full = bytearray()
        self.total = 0
        self.full_complete = True

    def add(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        room = self.full_limit - len(self.full)
        if room > 0:
            self.full += data[:room]
        if len(data) > room:
            self.full_complete = False
        need = self.head_limit - len(self.head)
        if need > 0:
            self.head += data[:need]
            data = data[need:]
        if data:
            self.tail += data
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def text(self, saved_path: str | None = None) -> str:
        """The capped text: everything when it fits, else head + a marker + tail."""
        if not self.truncated:
            return clean(bytes(self.head + self.tail))
        omitted = self.total - len(self.head) - len(self.tail)
        where = f"; full output saved to {saved_path}" if saved_path else ""
        marker = f"\n[... {omitted} bytes of output omitted{where} ...]\n"
        return clean(bytes(self.head)) + marker + clean(bytes(self.tail))
