"""The ``agentkit`` command. Each subcommand lives in its own module with a ``register(subparsers)``.

Exit codes: 0 done, 1 run failed or hit a limit, 2 usage error (a one-line message, no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys

from agentkit.errors import AgentkitError

# Modules under agentkit.cli that add subcommands; a missing one is skipped so the CLI
# keeps working while parts are optional.
SUBCOMMAND_MODULES = ("chat", "models", "run", "render", "sandboxes", "batch", "demo", "index", "eval", "config", "runs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentkit", description="Code and search agents for DeepSeek V3.1.")
    parser.add_argument("--version", action="version", version=f"agentkit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"agentkit.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"agentkit.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _version() -> str:
    from agentkit import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:  # the subcommands' imports take a moment too: Ctrl-C there is no traceback either
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # what `batch --processes` gives its children
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        from agentkit.cli.common import apply_settings

        apply_settings(args)  # defaults from AGENTKIT_* and agentkit.toml for the flags not given
        return int(args.func(args) or 0)
    except AgentkitError as e:
        print(f"agentkit: error: {cli_words(str(e))}", file=sys.stderr)
        return e.exit_code
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or "stop" at a --confirm question
        hint = getattr(args, "resume_hint", None)
        print("agentkit: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `agentkit ... | head`: the reader left; end quietly
        quiet_stdout()
        return 0


# The library names its parameters in its errors (``fallbacks=[...]``); the command line says the flag.
_CLI_WORDS = (("fallbacks=[...]", "--fallback MODEL"), ("base_url=URL", "--base-url URL"),
              ("model='replay:PATH'", "--model replay:PATH"), ("model=NAME", "--model NAME"),
              ("searxng_url=URL", "--searxng-url URL"), ("search_backend='searxng'", "--search-backend searxng"),
              ("search_backend='fixture:PATH'", "--search-backend fixture:PATH"),
              ("search_backend='local:DIR'", "--search-backend local:DIR"),
              # the runner behind `agentkit code`/`research`, also run from Python (agentkit.app.code.run_code)
              ("Limits(max_cost_usd=...)", "--max-cost"), ("prices=(IN, OUT)", "--price IN,OUT"),
              ("repo=PATH", "--repo PATH"), ("image=NAME", "--image NAME"),
              ("sandbox='docker'", "--sandbox docker"), ("sandbox='local'", "--sandbox local"),
              ("setup_cmd=", "--setup-cmd "),
              ("max_copy_bytes=BYTES (None: no limit)", "--max-copy-size (e.g. --max-copy-size 10G, or none)"))


def cli_words(message: str) -> str:
    """An error's text as the CLI says it: each library parameter it names becomes its flag."""
    for library, flag in _CLI_WORDS:
        message = message.replace(library, flag)
    return message


def quiet_stdout() -> None:
    """Point stdout at /dev/null after its reader went away, so that flushing it at exit does not
    print a BrokenPipeError of its own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
