"""Where an ``old_str`` that does not occur almost occurs: the editor's hint after a near miss.

Bounded work whatever the sizes (a token-step budget): difflib over every window of a file took
minutes on a 1,000-line file and froze every run in the process.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["HINT_BUDGET", "NearMatches", "near_matches"]

HINT_BUDGET = 50_000  # token steps for near_matches: tens of ms at most, whatever the sizes
HINT_MIN_SIMILARITY = 0.6
_TOKEN = re.compile(r"\w+|[^\w\s]")
_MAX_LINE_CHARS = 400  # a longer line is compared by its start, so one line costs ≤ 401 steps
_ANCHOR_LINES, _ANCHOR_HITS = 6, 3  # substring searches (C speed) to place windows first


@dataclass
class NearMatches:
    """What ``near_matches`` found, and what it cost."""

    whitespace_line: int | None = None  # old_str is here, except for whitespace (1-based)
    similar: list[tuple[float, int, str]] = field(default_factory=list)  # (similarity, first line, text)
    work: int = 0  # token steps spent, never more than the budget
    compared_to: int = 0  # windows starting after this line were not all compared (budget spent)
    complete: bool = True


def _tokens(line: str) -> list[str]:
    return _TOKEN.findall(line[:_MAX_LINE_CHARS])


def near_matches(text: str, old: str, *, top: int = 3, budget: int = HINT_BUDGET) -> NearMatches:
    """Where ``old`` almost occurs in ``text``, for at most ``budget`` token steps.

    Why not difflib over every window: that took minutes on a 1,000-line file. Each window of
    ``old``'s line count is scored by the words and punctuation it shares with ``old`` (Dice over
    token multisets), sliding one line at a time: a line's tokens enter and leave the window once,
    one step per token. Windows near lines that also occur in ``old`` go first, so on a file too
    big for the budget the steps go where the near miss most likely is.
    """
    res = NearMatches()
    lines = text.split("\n")
    old_lines = old.strip("\n").split("\n")
    width = len(old_lines)
    old_toks = [t for line in old_lines for t in _tokens(line)]
    res.work = len(old_toks)
    if not old_toks or res.work > budget:
        res.complete = not old_toks
        return res
    want = Counter(old_toks)
    squashed_old = "".join(old.split())
    n_starts = max(1, len(lines) - width + 1)
    cache: dict[int, list[str]] = {}
    scores: dict[int, float] = {}

    def scan(lo: int, hi: int, full: bool = False) -> bool:
        """Score the windows starting in [lo, hi); False when the budget ran out."""
        win: Counter[str] = Counter()
        common = size = 0

        def step(i: int, sign: int) -> bool:
            nonlocal common, size
            toks = cache.get(i)
            if toks is None:
                toks = cache[i] = _tokens(lines[i]) if i < len(lines) else []
            if res.work + 1 + len(toks) > budget:
                return False
            res.work += 1 + len(toks)
            for t in toks:
                if sign > 0:
                    win[t] += 1
                    common += win[t] <= want[t]
                else:
                    common -= win[t] <= want[t]
                    win[t] -= 1
            size += sign * len(toks)
            return True

        for s in range(lo, hi):
            if s == lo:
                if not all(step(i, 1) for i in range(s, s + width)):
                    return False
            elif not (step(s - 1, -1) and step(s + width - 1, 1)):
                return False
            if s not in scores:
                scores[s] = 2 * common / (len(old_toks) + size)
                if common == len(old_toks) == size and res.whitespace_line is None:
                    if "".join("".join(lines[s:s + width]).split()) == squashed_old:
                        blank = next((k for k, x in enumerate(lines[s:s + width]) if x.strip()), 0)
                        res.whitespace_line = s + blank + 1  # where the text starts, past blank lines
            if full:
                res.compared_to = s + 1
        return True

    # Lines of old that occur verbatim point at where the near miss probably is.
    hits: list[tuple[int, int]] = []
    needles = sorted(((len(x.strip()), j) for j, x in enumerate(old_lines) if len(x.strip()) >= 8), reverse=True)
    for _, j in needles[:_ANCHOR_LINES]:  # the longest lines: the most distinctive
        needle = old_lines[j].strip()
        pos = text.find(needle)
        for _ in range(_ANCHOR_HITS):
            if pos < 0:
                break
            hits.append((pos, j))
            pos = text.find(needle, pos + 1)
    regions, at, line_no = [], 0, 0
    for pos, j in sorted(hits):
        line_no += text.count("\n", at, pos)
        at = pos
        s = min(max(0, line_no - j), n_starts - 1)
        regions.append((max(0, s - 1), min(n_starts, s + 2)))
    res.complete = all(scan(lo, hi) for lo, hi in regions) and scan(0, n_starts, full=True)
    if res.whitespace_line is not None:
        return res
    best = sorted(((r, s) for s, r in scores.items() if r >= HINT_MIN_SIMILARITY), key=lambda x: (-x[0], x[1]))
    for r, s in best:
        if len(res.similar) == top:
            break
        if all(abs(s + 1 - n) >= width for _, n, _ in res.similar):
            res.similar.append((r, s + 1, "\n".join(lines[s:s + width])))
    return res
