"""Flags shared by the commands that run a model (``chat``, ``code``, ``research``, ``batch``, ``resume``).

Each ``add_*`` function adds one group of flags to an argparse parser, so every command spells and
documents them the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_model_flags(parser: argparse.ArgumentParser, thinking_default: str = "the preset's mode") -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--provider", help="openrouter | deepseek | atlascloud | vllm | sglang | llamacpp | "
                                      "openai-compatible | raw (default: from the model name and the keys set)")
    g.add_argument("--model", help="model name, or replay:FILE.jsonl to replay a script (default: the "
                                   "provider's: openrouter deepseek/deepseek-chat-v3.1, deepseek deepseek-chat, "
                                   "atlascloud deepseek-ai/DeepSeek-V3.1, self-hosted the server's first listed)")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 "
                                      "(default: the provider's own)")
    g.add_argument("--thinking", dest="thinking", action="store_true", default=None,
                   help=f"reasoning on (default: {thinking_default})")
    g.add_argument("--no-thinking", dest="thinking", action="store_false", help="reasoning off")
    g.add_argument("--tool-mode", choices=["native", "prompt", "auto"], default=None,
                   help="native: the endpoint's tools; prompt: tools described in the system prompt in the model "
                        "family's grammar, calls parsed from the text; auto (default): native, switching to "
                        "prompt when the endpoint refuses tools")
    g.add_argument("--template", choices=["v3.1", "v3.1-terminus", "v3-0324", "r1"], default=None,
                   help="prompt format for --provider raw (default: from the model id, else v3.1)")
    add_request_timeout_flag(g)


def add_request_timeout_flag(parser: Any) -> None:
    """``--request-timeout``: its own function so ``resume`` (which has no other model flags) takes it too."""
    parser.add_argument("--request-timeout", type=_positive_float, metavar="SECONDS",
                        help="give up on a model call that has not finished after this long and retry it "
                             "(default: 300; keep-alive bytes do not count as progress)")


def add_sandbox_flags(parser: argparse.ArgumentParser, setup: bool = False,
                      setup_where: str = "from the workspace, before the agent starts") -> None:
    """``setup``: also ``--setup-cmd`` and ``--env`` (the commands that work on a repository: ``code``,
    ``batch``; ``research`` has no project to install, only an empty scratch folder for ``--python``)."""
    g = parser.add_argument_group("sandbox")
    if setup:
        g.add_argument("--setup-cmd", metavar="CMD",
                       help=f"run once in the sandbox, {setup_where} (e.g. 'pip install -e .'); if it fails the "
                            "run stops with its output; what it writes is not part of the patch")
        g.add_argument("--env", action="append", default=[], type=env_pair, metavar="KEY=VALUE",
                       help="set in the sandbox's environment (repeatable); values of secret-looking keys "
                            "(*KEY*, *TOKEN*, *SECRET*, *PASSWORD*) are not stored in the trajectory")
    g.add_argument("--sandbox", choices=["local", "docker"], default=None,
                   help="where commands run (default: local, or sandbox in agentkit.toml / AGENTKIT_SANDBOX)")
    g.add_argument("--image", help="Docker image for --sandbox docker (default: agentkit-sandbox:latest)")
    g.add_argument("--network", action="store_true", default=None,
                   help="let commands in the sandbox reach the network (default: off, in both sandboxes; "
                        "web search and fetch run outside the sandbox and are not affected)")


# The cap on one run when --max-cost is not given (agentkit.app.runner.DEFAULT_MAX_COST; the same
# number, kept here so that --help does not import the runner).
DEFAULT_MAX_COST = 2.0
RUN_COST_HELP = (f"stop the run after this many US dollars, or none for no cap (default: ${DEFAULT_MAX_COST:g} "
                 "when the model has a known price; no cap for replays, self-hosted servers and unpriced models)")


def add_limit_flags(parser: argparse.ArgumentParser, cost_help: str = RUN_COST_HELP,
                    steps_help: str = "stop after this many model calls (default: 50)") -> None:
    g = parser.add_argument_group("limits")
    g.add_argument("--max-steps", type=_positive_int, help=steps_help)
    g.add_argument("--max-cost", type=_cost, metavar="USD|none", help=cost_help)
    g.add_argument("--price", type=_price, metavar="IN,OUT",
                   help="USD per million input,output tokens for a model the catalog does not price "
                        "(costs and --max-cost use it; a provider-reported cost still wins; default: the "
                        "catalog's price)")


def cost_limit(value: float | str | None,
               default: float | None = DEFAULT_MAX_COST) -> tuple[float | None, float | None]:
    """``--max-cost`` as ``(max_cost, default_max_cost)`` for ``RunOptions``: a number is the cap,
    ``none`` lifts every cap, and not given leaves ``default`` to apply when the model has a price."""
    if value == "none":
        return None, None
    if value is None:
        return None, default
    return float(value), None


def _cost(text: str) -> float | str:
    if text.strip().lower() == "none":
        return "none"
    return _positive_float(text)


def add_output_flags(parser: argparse.ArgumentParser, out_help: str = "output folder (default: "
                     "$XDG_DATA_HOME/agentkit/runs/<timestamp>-<slug>/, i.e. ~/.local/share/agentkit/runs/...)") -> None:
    g = parser.add_argument_group("output")
    g.add_argument("--out", help=out_help)
    g.add_argument("--quiet", action="store_true", help="no progress display")
    g.add_argument("--json", action="store_true", help="print result.json to stdout when done")


def env_pair(text: str) -> tuple[str, str]:
    """``--env KEY=VALUE`` as a pair; KEY must be a shell variable name (it goes into an export line)."""
    from agentkit.sandboxes.base import ENV_NAME  # the names every sandbox takes

    key, eq, value = text.partition("=")
    if not eq or not ENV_NAME.fullmatch(key):
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (KEY: letters, digits and _)")
    return key, value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _price(text: str) -> tuple[float, float]:
    from agentkit.models.catalog import parse_price

    try:
        return parse_price(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


# Commands whose flag defaults come from agentkit.toml, the user's config and AGENTKIT_* variables
# (agentkit.config); not resume, which continues with the run's own settings.
SETTING_COMMANDS = ("code", "research", "chat", "batch")


def apply_settings(args: argparse.Namespace) -> None:
    """Fill the flags the user did not give from the settings (flags > env > repo config > user config)."""
    from pathlib import Path

    from agentkit.config import SETTINGS, load_settings

    if getattr(args, "command", None) not in SETTING_COMMANDS:
        return
    keys = [k for k in SETTINGS if hasattr(args, k)]
    repo = getattr(args, "repo", None)
    repo = repo if isinstance(repo, str) and Path(repo).expanduser().is_dir() else None
    settings = load_settings(repo, {k: getattr(args, k) for k in keys})
    for key in keys:
        s = settings[key]
        if s.source != "built-in" or (getattr(args, key) is None and s.value is not None and key != "model"):
            setattr(args, key, s.value)
        if s.note:
            print(f"agentkit: note: {s.note}", file=sys.stderr)


def progress_mode(args: argparse.Namespace) -> str:
    if getattr(args, "quiet", False):
        return "quiet"
    return "auto"


def progress_stream(args: argparse.Namespace) -> Any:
    """Progress goes to stderr when stdout carries the JSON result."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))
