"""Prompt tool mode: tools described in the system prompt in the model family's own grammar, calls
parsed from the reply's text, tool results sent back as user messages.

For endpoints that refuse native ``tools`` (OpenRouter answers 404 "No endpoints found that support
tool use" for ``deepseek/deepseek-r1``; self-hosted servers without a tool parser). V3.1 and
V3.1-Terminus get the model card's ToolCall block (``render_tools_block``); R1, V3-0324 and V3 the
``function<｜tool▁sep｜>NAME`` + fenced JSON grammar their chat templates use. The request then
needs nothing but ``system``, ``user`` and ``assistant`` messages, which every chat endpoint takes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentkit.deepseek.parse import parse_completion
from agentkit.deepseek.render import _call_parts, _legacy_call, _tool_spec, render_tools_block, template_for_model
from agentkit.deepseek.special import CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, SEP, neutralize
from agentkit.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage, content_text
from agentkit.models.base import Completion

ToolMode = str  # "native" | "prompt" | "auto"
TOOL_MODES = ("native", "prompt", "auto")

LEGACY_FOOTER = (
    "\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    f"{CALLS_BEGIN}{CALL_BEGIN}function{SEP}tool_call_name\n```json\ntool_call_arguments\n```{CALL_END}"
    f"{{additional_tool_calls}}{CALLS_END}\n"
    "\n"
    "Where:\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces\n"
)


def grammar_version(model: str) -> str:
    """The parser/renderer version whose tool grammar ``model`` was trained on."""
    return template_for_model(model)


def is_legacy(version: str) -> bool:
    return version in ("r1", "v3-0324", "v3")


def tools_prompt(tools: list[dict[str, Any]], version: str) -> str:
    """The system-prompt text that describes ``tools`` in this family's grammar."""
    if not is_legacy(version):
        return render_tools_block(tools)
    sections = [f"\n### {name}\nDescription: {desc}\n\nParameters: {json.dumps(params)}\n"
                for name, desc, params in map(_tool_spec, tools)]
    return "## Tools\nYou have access to the following tools:\n" + "".join(sections) + LEGACY_FOOTER


def _calls_text(msg: AssistantMessage, version: str) -> str:
    if is_legacy(version):
        body = "".join(_legacy_call(c) for c in msg.tool_calls)
    else:
        body = "".join(CALL_BEGIN + _call_parts(c)[1] + SEP + _call_parts(c)[2] + CALL_END for c in msg.tool_calls)
    return CALLS_BEGIN + body + CALLS_END


def to_prompt_messages(messages: list[Message], tools: list[dict[str, Any]], version: str) -> list[Message]:
    """The conversation for a request without ``tools``: the tools block appended to the system
    message (one is added when there is none), each assistant turn's calls written out in the
    grammar, and each run of tool results one user message (their text neutralized, so output
    cannot fake a call or a turn)."""
    block = tools_prompt(tools, version)
    out: list[Message] = []
    names: dict[str, str] = {}
    results: list[str] = []

    def flush() -> None:
        if results:
            out.append(UserMessage(content="\n\n".join(results)))
            results.clear()

    for m in messages:
        if isinstance(m, ToolMessage):
            name = names.get(m.tool_call_id, m.name or "tool")
            results.append(f"[tool result: {name} (call {m.tool_call_id})]\n{neutralize(content_text(m.content))}")
            continue
        flush()
        if isinstance(m, AssistantMessage) and m.tool_calls:
            for c in m.tool_calls:
                names[c.id] = c.name
            text = content_text(m.content) if m.content is not None else ""
            m = m.model_copy(update={"content": text + _calls_text(m, version), "tool_calls": []})
        out.append(m)
    flush()
    if out and isinstance(out[0], SystemMessage):
        sys_text = content_text(out[0].content)
        out[0] = out[0].model_copy(update={"content": (sys_text + "\n\n" if sys_text else "") + block})
    else:
        out.insert(0, SystemMessage(content=block))
    return out


def parse_prompt_reply(comp: Completion, version: str) -> Completion:
    """``comp`` with the calls written in its text turned into tool calls (nothing parses: unchanged)."""
    msg = comp.message
    if msg.tool_calls:
        # the leak repair every chat completion gets already moved them: in prompt mode that is no leak
        warnings = [w for w in comp.warnings if not w.startswith("moved ") or "tool call" not in w]
        return comp.model_copy(update={"finish_reason": "tool_calls", "warnings": warnings})
    if not isinstance(msg.content, str) or not msg.content:
        return comp
    parsed = parse_completion(msg.content, version, thinking=False)
    if not parsed.tool_calls:
        return comp
    content = (parsed.content + parsed.trailing).strip() or None
    new = msg.model_copy(update={"content": content, "tool_calls": parsed.tool_calls})
    return comp.model_copy(update={"message": new, "finish_reason": "tool_calls",
                                   "warnings": [*comp.warnings, *parsed.errors]})


_TOOLISH = re.compile(r"tool|function[ _-]?call", re.I)
_REFUSAL = re.compile(r"support|not enabled|not allowed|enable-auto-tool-choice|tool-call-parser|unavailable", re.I)


def refuses_tools(status: int | None, message: str) -> bool:
    """Whether an error says the endpoint does not take native tools (OpenRouter's 404 "No endpoints
    found that support tool use", a 400/404/422 saying tools or function calling are unsupported)."""
    return status in (400, 404, 422) and bool(_TOOLISH.search(message)) and bool(_REFUSAL.search(message))
