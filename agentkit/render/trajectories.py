"""What the trajectory renderers share: loading a run and deciding what "the conversation" is.

The conversation of a run is what the model saw at its last call (compactions applied, via
``Trajectory.context_messages``) followed by what it answered then. Rendered as DeepSeek text it
is the model's own prompt; exported as OpenAI messages it is one fine-tuning example.
"""

from __future__ import annotations

import os
from typing import Any

from agentkit.deepseek.render import SearchAgentFormat, render_prompt
from agentkit.errors import ConfigError
from agentkit.messages import AssistantMessage, Message, Usage, message_from_openai


def load(path: str | os.PathLike[str]) -> Any:
    """The ``Trajectory`` at ``path``; a missing or unreadable file is a one-line ``ConfigError``."""
    from agentkit.trajectory import Trajectory

    try:
        traj = Trajectory.load(path)
    except FileNotFoundError:
        raise ConfigError(f"no trajectory at {path}; pass the .jsonl file a run wrote") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read trajectory {path}: {e}") from None
    if not traj.records or not traj.run:
        raise ConfigError(f"{path} is not an agentkit trajectory (no 'run' record on its first line)")
    return traj


def conversation(traj: Any) -> list[Message]:
    """The model's last context plus its last answer (the whole history when no call was made)."""
    calls = traj.model_calls()
    if not calls:
        return list(traj.messages)
    last_assistant = None
    for r in reversed(traj.records):
        if r.get("type") == "message" and (r.get("message") or {}).get("role") == "assistant":
            last_assistant = message_from_openai(r["message"])
            break
    out = list(calls[-1])
    if isinstance(last_assistant, AssistantMessage):
        out.append(last_assistant)
    return out


def usage_of(traj: Any) -> Usage:
    """Total usage; records whose usage does not validate are skipped instead of failing the page."""
    try:
        return traj.usage  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - a damaged record must not hide the rest of the run
        total = Usage()
        for r in traj.records:
            if r.get("type") in ("message", "event") and isinstance(r.get("usage"), dict):
                try:
                    total = total + Usage(**r["usage"])
                except Exception:  # noqa: BLE001
                    continue
        return total


def is_thinking(traj: Any) -> bool:
    run = traj.run
    settings = run.get("settings") if isinstance(run.get("settings"), dict) else {}
    return bool(run.get("thinking") if run.get("thinking") is not None else settings.get("thinking"))


def render_deepseek(path: str | os.PathLike[str], version: str = "v3.1") -> str:
    """The run as DeepSeek prompt text: what the model saw at its last step (compactions included)
    and what it answered. Thinking runs use the search-agent format (reasoning of the current
    turn kept); others the official template."""
    traj = load(path)
    msgs = conversation(traj)
    if is_thinking(traj) and version == "v3.1":
        return SearchAgentFormat().render(msgs, traj.tools or None, add_generation_prompt=False)
    return render_prompt(msgs, traj.tools or None, add_generation_prompt=False, version=version)
