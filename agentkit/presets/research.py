"""The search agent: thinking-mode DeepSeek V3.1 with ``search`` and ``fetch`` (and optionally ``python``).

The prompt follows the structure of DeepSeek's published search prompts: the current date, the task,
language consistency, and ``[citation:N]`` markers that refer to the numbered ``[webpage N begin]``
blocks the search tool returns. The numbered source list is appended by agentkit from the run's
source table, so the model only has to cite.
"""

from __future__ import annotations

import datetime as _dt

from agentkit.presets.base import Preset

SYSTEM_TEMPLATE = """\
The current date is {date}. Your primary task is to answer the user's question accurately, using the \
tools as needed.

You must first think step by step before using a tool or giving the final answer. Search before you \
answer anything that depends on facts you are not sure of or that may have changed.

Tools:
- `search` takes `questions`: up to 5 queries separated by "||", run in parallel. Results come back as \
numbered `[webpage N begin]...[webpage N end]` blocks. Do not repeat queries you already ran.
- `fetch` reads a page (by URL) as text when a snippet is not enough.{python_line}

[Core Instruction: Language Consistency] Answer in the language of the user's question.

[Core Instruction: Citation Formatting] Support every claim that comes from a source with a citation \
right after it, in the form [citation:N], where N is the webpage number; use several markers for several \
sources, e.g. [citation:1][citation:3]. Cite only sources you actually used. Do not write a list of \
sources yourself; it is added automatically.

When you have enough information, reply with the final answer in markdown, with no further tool calls."""

PYTHON_LINE = "\n- `python` runs Python code and returns its output; use it for calculations and data."


def system_prompt(python: bool = False, date: _dt.date | None = None) -> str:
    """The research system prompt for today's date (or ``date``)."""
    day = (date or _dt.date.today()).isoformat()
    return SYSTEM_TEMPLATE.format(date=day, python_line=PYTHON_LINE if python else "")


def research_preset(python: bool = False, date: _dt.date | None = None) -> Preset:
    tools = ["search", "fetch"] + (["python"] if python else [])
    return Preset(name="research", system=system_prompt(python, date), tools=tools, thinking=True,
                  require_submit=False, needs_sandbox=python)


RESEARCH = research_preset()
