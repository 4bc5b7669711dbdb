"""DeepSeek V3.1 special tokens, spelled exactly as the tokenizer has them.

``｜`` is U+FF5C and ``▁`` is U+2581; the ASCII look-alikes are different strings and are not
single tokens, so every place that writes a marker takes it from here.
"""

from __future__ import annotations

import re

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK_BEGIN = "<think>"
THINK_END = "</think>"
EOT = "<|EOT|>"  # ASCII bars: this one really is spelled that way
CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"
OUTPUTS_BEGIN = "<｜tool▁outputs▁begin｜>"
OUTPUTS_END = "<｜tool▁outputs▁end｜>"
OUTPUT_BEGIN = "<｜tool▁output▁begin｜>"
OUTPUT_END = "<｜tool▁output▁end｜>"
SEARCH_BEGIN = "<｜search▁begin｜>"
SEARCH_END = "<｜search▁end｜>"

ALL_MARKERS = (BOS, EOS, PAD, USER, ASSISTANT, CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP,
               OUTPUTS_BEGIN, OUTPUTS_END, OUTPUT_BEGIN, OUTPUT_END, SEARCH_BEGIN, SEARCH_END,
               "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>", EOT)

# Any ``<｜…｜>`` marker (closing DSML tags and attributes included). With ASCII bars only names that
# look like DeepSeek's (a ``▁`` inside, or EOT/User/Assistant/DSML), so code such as F#'s
# ``x <| f |> g`` is left alone. Bounded repeats keep it linear on hostile input.
MARKER_RE = re.compile(r"</?｜[^<>\n｜]{1,40}｜[^<>\n]{0,200}?>"
                       r"|</?\|(?:[^<>\n|]{0,40}▁[^<>\n|]{0,40}|EOT|User|Assistant|DSML)\|[^<>\n]{0,200}?>")
# The markers the viewer highlights: the fixed vocabulary plus think tags.
HIGHLIGHT_RE = re.compile("|".join(re.escape(m) for m in (*ALL_MARKERS, THINK_BEGIN, THINK_END)))


# The exact shapes of every special token in the V3.1 vocabulary (``<｜…｜>``, the ASCII-barred
# ``<|EOT|>``, the think tags); text that merely contains one is tokenized as that token.
_SPECIAL_SHAPE_RE = re.compile(r"<｜[^｜<>]{1,64}｜>|<\|EOT\|>|</?think>")
_DEFANGED = {EOT: "<｜EOT｜>", THINK_BEGIN: "＜think＞", THINK_END: "＜/think＞"}


def _defang(m: re.Match[str]) -> str:
    token = m.group(0)
    if token in _DEFANGED:
        return _DEFANGED[token]
    if token == "<｜EOT｜>":
        return token  # not a token; with ASCII bars it would become one
    return "<|" + token[2:-2] + "|>"


def neutralize(text: str) -> str:
    """``text`` with every special-token spelling made inert, so that text from a user, a tool
    or a web page cannot fake turns, tool outputs or reasoning in a raw prompt.

    ``<｜User｜>`` becomes ``<|User|>`` (ASCII bars are not special tokens), ``<|EOT|>`` becomes
    ``<｜EOT｜>``, ``<think>``/``</think>`` get full-width angle brackets. Readable, and
    idempotent; text without such spellings is returned as is.
    """
    if "<" not in text:
        return text
    return _SPECIAL_SHAPE_RE.sub(_defang, text)
