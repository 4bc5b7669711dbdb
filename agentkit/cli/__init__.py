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
    for sp in _subparsers(parser):
        sp.formatter_class = DefaultsFormatter
        sp.set_defaults(command_parser=sp)  # the innermost subcommand's: whose flags an error may name
    return parser


class DefaultsFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default: the help's own "(default: ...)" where it says what the
    default means, else the value argparse holds ("none" for an option that is off unless given)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if (not text or text == argparse.SUPPRESS or "default" in text.lower() or not action.option_strings
                or action.nargs == 0):  # switches (--quiet, --json) are off unless given
            return text
        default = action.default
        shown = "none" if default in (None, [], argparse.SUPPRESS) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones (``eval swebench``) included."""
    out: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in dict.fromkeys(action.choices.values()):
                out += [sp, *_subparsers(sp)]
    return out


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
        print(f"agentkit: error: {cli_words(str(e), getattr(args, 'command_parser', None))}", file=sys.stderr)
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
              ("searxng_url=URL", "--search-backend searxng:URL"),  # research has no --searxng-url
              ("search_backend='searxng'", "--search-backend searxng"),
              ("search_backend='fixture:PATH'", "--search-backend fixture:PATH"),
              ("search_backend='local:DIR'", "--search-backend local:DIR"),
              # the runner behind `agentkit code`/`research`, also run from Python (agentkit.app.code.run_code)
              ("Limits(max_cost_usd=...)", "--max-cost"), ("prices=(IN, OUT)", "--price IN,OUT"),
              ("repo=PATH", "--repo PATH"), ("image=NAME", "--image NAME"),
              ("sandbox='docker'", "--sandbox docker"), ("sandbox='local'", "--sandbox local"),
              ("setup_cmd=", "--setup-cmd "),
              ("max_copy_bytes=BYTES (None: no limit)", "--max-copy-size (e.g. --max-copy-size 10G, or none)"),
              # batch and evaluation (agentkit.app.batch, agentkit.app.eval_swebench)
              ("ray_address=ADDRESS", "--ray ADDRESS"), ("ray_address=", "--ray "), ("workers=", "--workers "),
              ("processes=", "--processes "), ("image_template=", "--image-template "), ("filter=", "--filter "))


# What a hint says instead when the command at hand lacks the flag: the clause naming the library's
# parameter (a regular expression) and its replacement ("" drops it). `agentkit code` has no --fallback.
_ABSENT = {"--fallback": ((r"(?:;|,)? or (?:set |use )?fallbacks=\[\.\.\.\]", ""),),
           "--sandbox": ((r";? or run with sandbox='local'", ""), (r"sandbox='docker'", "the Docker sandbox"))}


def cli_words(message: str, parser: argparse.ArgumentParser | None = None) -> str:
    """An error's text as the CLI says it: each library parameter it names becomes its flag. With the
    command's ``parser``, only flags that command has: a hint about a flag it lacks is dropped where
    ``_ABSENT`` knows the clause, else left in the library's words."""
    import re

    for library, flag in _CLI_WORDS:
        if library not in message:
            continue
        if parser is not None and flag.split()[0] not in parser._option_string_actions:
            for pattern, instead in _ABSENT.get(flag.split()[0], ()):
                message = re.sub(pattern, instead, message)
            continue
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
