"""Export a run as one OpenAI-format fine-tuning example: ``{"messages": [...], "tools": [...]}``.

The messages are the conversation the model last saw plus its last answer (compactions applied),
in the chat-completions shape: assistant ``tool_calls`` with string ``arguments`` and matching
``tool`` messages. Reasoning is kept as ``reasoning_content`` (trainers that do not use it ignore it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from agentkit.render.trajectories import conversation, load


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if v is not None or k == "content"}
    for call in out.get("tool_calls") or []:
        call.pop("index", None)
    return out


def export_openai(path: str | os.PathLike[str], *, reasoning: bool = True) -> dict[str, Any]:
    """One fine-tuning example for the run at ``path``."""
    traj = load(path)
    messages = []
    for m in conversation(traj):
        d = _clean(m.to_openai())
        if not reasoning:
            for key in ("reasoning_content", "reasoning", "reasoning_details"):
                d.pop(key, None)
        messages.append(d)
    example: dict[str, Any] = {"messages": messages}
    if traj.tools:
        example["tools"] = traj.tools
    return example


def export_openai_jsonl(paths: Iterable[str | os.PathLike[str]], *, reasoning: bool = True) -> str:
    """One JSONL line per run."""
    return "".join(json.dumps(export_openai(p, reasoning=reasoning), ensure_ascii=False) + "\n" for p in paths)
