"""``agentkit chat PROMPT``: one model call from the terminal, streamed (reasoning dimmed), or as JSON.

Handy to check a provider, a key or a local server before running an agent on it. The reply is
printed once, when it is complete: a stream that breaks is retried from the start, so text shown
while it streams may be dropped. On a terminal it streams into a region that is erased at the end;
into a pipe or file only the final reply goes.

``--trajectory FILE`` records the exchange as an agentkit trajectory; ``--continue FILE PROMPT``
sends that conversation again with a new user turn and appends the turn and the reply to the same
file (a conversation is one file, and ``Trajectory.load(FILE).messages`` reads all of it). The
trajectory's model and provider are used unless given; its base URL only when it is the provider's
own or ``--base-url`` repeats it, since the file may come from someone else (the rule of resume).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from agentkit.cli.common import add_model_flags, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="send one prompt to a model and print the answer",
                       description="Send one prompt (text, @FILE or - for stdin) and print the reply.")
    p.add_argument("prompt", metavar="PROMPT", help="the message, @FILE to read it from a file, - for stdin")
    p.add_argument("--system", help="a system message")
    p.add_argument("--max-tokens", type=int, help="most tokens to generate (default: the endpoint's)")
    p.add_argument("--temperature", type=float, help="sampling temperature (default: the endpoint's)")
    p.add_argument("--no-stream", dest="stream", action="store_false", default=True,
                   help="wait for the whole reply instead of streaming it")
    p.add_argument("--json", action="store_true", help="print the final message, usage and cost as JSON")
    p.add_argument("--fallback", action="append", default=[], metavar="[PROVIDER:]MODEL",
                   help="model to try when the first one fails (repeatable)")
    p.add_argument("--trajectory", metavar="FILE", help="record the conversation in FILE (JSONL), to --continue it")
    p.add_argument("--continue", dest="cont", metavar="TRAJ",
                   help="continue the finished conversation in TRAJ (a chat --trajectory or a run's "
                        "trajectory.jsonl) with PROMPT as the next user turn; the turn and the reply are "
                        "appended to TRAJ. Its model and provider are used unless given; its base URL only "
                        "when it is the provider's own, otherwise repeat --base-url (your API key goes there)")
    add_model_flags(p, "the provider's default")
    p.set_defaults(func=cmd_chat)


def _read_prompt(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@") and len(text) > 1:
        from pathlib import Path

        from agentkit.errors import ConfigError

        path = Path(text[1:])
        if not path.is_file():
            raise ConfigError(f"prompt file {path} not found")
        return path.read_text(encoding="utf-8")
    return text


def cmd_chat(args: argparse.Namespace) -> int:
    from agentkit.messages import SystemMessage, UserMessage
    from agentkit.models import ModelSettings, make_model

    before = _conversation(args) if args.cont else None
    settings = ModelSettings(thinking=args.thinking, max_tokens=args.max_tokens, temperature=args.temperature,
                             tool_mode=args.tool_mode)
    if args.request_timeout is not None:  # unset stays unset, so the model's own default applies
        settings.request_timeout = args.request_timeout
    model = make_model(args.model, provider=args.provider, base_url=args.base_url,
                       settings=settings, fallbacks=args.fallback, template=args.template)
    messages: list[Any] = before.messages if before is not None else []
    if args.system:
        messages.append(SystemMessage(content=args.system))
    messages.append(UserMessage(content=_read_prompt(args.prompt)))
    path = args.cont or args.trajectory
    record = None
    if path:
        header = {"preset": "chat", "model": args.model, "provider": args.provider, "base_url": args.base_url,
                  "system": args.system}
        record = _Recorder(path, model, new=messages if before is None else None, header=header,
                           turn=messages[-1], before=before)
    return asyncio.run(_chat(model, messages, stream=args.stream and not args.json, as_json=args.json,
                             record=record))


def _conversation(args: argparse.Namespace) -> Any:
    """The conversation ``--continue`` goes on with; fills in the model flags the trajectory names,
    taking its base URL only on the terms of ``agentkit resume`` (``runner._unconfirmed``)."""
    from pathlib import Path

    from agentkit.app.runner import RunOptions, _unconfirmed
    from agentkit.errors import ConfigError
    from agentkit.trajectory import Trajectory

    path = Path(args.cont)
    if not path.is_file():
        raise ConfigError(f"{path}: no such trajectory file; pass the file chat --trajectory or a run wrote")
    if args.trajectory:
        raise ConfigError("--continue appends to its own trajectory file; leave out --trajectory")
    if args.system:
        raise ConfigError("--continue keeps the conversation's system message; leave out --system")
    traj = Trajectory.load(path, strict=True)  # a damaged file is a one-line error
    if traj.end is None:
        raise ConfigError(f"{path} is not a finished conversation (it has no end record); "
                          "continue an unfinished run with `agentkit resume`")
    run = traj.run
    options = run["options"] if isinstance(run.get("options"), dict) else {}
    saved = {}
    for key in ("model", "provider", "base_url"):
        value = options.get(key, run.get(key))
        if isinstance(value, str) and value:
            saved[key] = value
    given = {k: getattr(args, k) for k in ("model", "provider", "base_url") if getattr(args, k) is not None}
    opts = RunOptions(preset="research", **{**saved, **given})  # only the model fields matter here
    need = _unconfirmed(opts, set(given), path)
    if need:
        raise ConfigError(f"{path} may come from someone else, so --continue takes some of its settings only "
                          f"from the command line: repeat {'; '.join(need)} to use them")
    args.model, args.provider, args.base_url = opts.model, opts.provider, opts.base_url
    return traj


class _Recorder:
    """Writes a chat exchange to a trajectory: a new file (header and the messages), or, for
    ``--continue``, the new user turn appended to the conversation's file; then reply and end."""

    def __init__(self, path: str, model: Any, new: list[Any] | None, header: dict[str, Any], turn: Any,
                 before: Any = None) -> None:
        self.path, self.model, self.new, self.header, self.turn = path, model, new, header, turn
        self.steps = before.steps if before is not None else 0  # the conversation's model calls so far
        self.usage = before.usage if before is not None else None

    def write(self, completion: Any) -> None:
        import time
        import uuid

        import agentkit
        from agentkit.redact import model_secrets
        from agentkit.trajectory import TrajectoryWriter

        with TrajectoryWriter(self.path, secrets=model_secrets(self.model), append=self.new is None) as w:
            if self.new is not None:
                w.run(id=uuid.uuid4().hex[:16], agentkit_version=agentkit.__version__, created=time.time(),
                      task=self.turn.text, tools=[], **{k: v for k, v in self.header.items() if v is not None})
                for m in self.new:
                    w.message(0, m)
            else:
                w.message(self.steps, self.turn)
            w.message(self.steps + 1, completion.message, usage=completion.usage, cost_usd=completion.usage.cost_usd)
            total = completion.usage if self.usage is None else self.usage + completion.usage
            w.end("done", completion.message.text, total, total.cost_usd)


class _LiveReply:
    """The reply while it streams, on a terminal: its last screenful, erased when the call ends
    (the final reply is printed then). A retry that drops the partial reply clears it."""

    def __init__(self, console: Any) -> None:
        from rich.live import Live

        self.console = console
        self.reasoning = ""
        self.content = ""
        self.live = Live(console=console, transient=True, refresh_per_second=8, get_renderable=self._render)

    def add(self, reasoning: str | None, content: str | None) -> None:
        self.reasoning += reasoning or ""
        self.content += content or ""

    def clear(self) -> None:
        self.reasoning = self.content = ""

    def _render(self) -> Any:
        from rich.text import Text

        text = Text()
        text.append(self.reasoning, style="dim")
        if self.reasoning and self.content:
            text.append("\n\n")
        text.append(self.content)
        lines = text.wrap(self.console, self.console.width)
        return Text("\n").join(list(lines)[-max(1, self.console.height - 2):])


async def _chat(model: Any, messages: list[Any], *, stream: bool, as_json: bool, record: Any = None) -> int:
    from contextlib import nullcontext

    from rich.console import Console

    from agentkit.models import ModelEvent

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    shown = _LiveReply(out) if stream and out.is_terminal else None

    def on_event(ev: ModelEvent) -> None:
        if ev.kind == "tool_mode":
            err.print(f"[tools now in the prompt ({ev.mode} mode)] {ev.error}", style="yellow", markup=False)
            return
        what = f"falling back to {ev.to_model}" if ev.kind == "fallback" else f"retry {ev.attempt} in {ev.wait_s:.1f}s"
        if ev.discarded:
            what += ", reply so far dropped"
            if shown is not None:
                shown.clear()
        err.print(f"[{what}] {ev.error}", style="yellow", markup=False)

    try:
        if stream:
            completion = None
            with shown.live if shown is not None else nullcontext():
                async for delta in model.stream(messages, on_event=on_event):
                    if shown is not None:
                        shown.add(delta.reasoning, delta.content)
                    completion = delta.completion or completion
            assert completion is not None
        else:
            completion = await model.complete(messages, on_event=on_event)
    finally:
        await model.aclose()

    if record is not None:
        record.write(completion)
    msg = completion.message
    if as_json:
        print_json({"model": completion.model, "provider": completion.provider, "message": msg.to_openai(),
                    "finish_reason": completion.finish_reason, "usage": completion.usage.model_dump(),
                    "cost_usd": completion.usage.cost_usd, "latency_s": round(completion.latency_s, 3),
                    "warnings": completion.warnings})
        return 0
    if msg.reasoning:
        out.print(msg.reasoning, style="dim", markup=False)
        out.print()
    out.print(msg.text, markup=False)
    for call in msg.tool_calls:
        out.print(f"→ {call.name}({call.arguments})", style="cyan", markup=False)
    u = completion.usage
    cost = "cost unknown" if u.cost_usd is None else f"${u.cost_usd:.6f}"
    err.print(f"{completion.model} · {u.prompt} in / {u.completion} out"
              f"{f' ({u.cached} cached)' if u.cached else ''} · {cost} · {completion.finish_reason}",
              style="dim", markup=False)
    return 0
