"""``agentkit render TRAJ --format deepseek|openai|html|markdown [-o FILE]`` and ``agentkit view TRAJ``."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from agentkit.errors import ConfigError

FORMATS = ("deepseek", "openai", "html", "markdown")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="print a trajectory as DeepSeek text, OpenAI JSONL, HTML or Markdown",
                       description="Render a run's trajectory (.jsonl): 'deepseek' = the model's own prompt text at "
                                   "its last step (compactions included); 'openai' = one JSONL line per run "
                                   "(messages + tools, for fine-tuning); 'html' = the viewer page; 'markdown' = a "
                                   "readable transcript.")
    p.add_argument("trajectories", nargs="+", metavar="TRAJ", help="trajectory file(s); several only with openai")
    p.add_argument("--format", "-f", choices=FORMATS, default="deepseek", help="output format (default: deepseek)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    p.add_argument("--prompt-version", dest="prompt_version", choices=("v3.1", "v3-0324", "r1"), default="v3.1",
                   help="DeepSeek prompt grammar for --format deepseek (default: v3.1)")
    p.add_argument("--no-reasoning", action="store_true", help="openai: leave reasoning_content out")
    p.set_defaults(func=cmd_render)

    v = sub.add_parser("view", help="write a trajectory's HTML viewer page and open it",
                       description="Write the self-contained HTML page of a run next to it (or to -o) and open it "
                                   "in a browser.")
    v.add_argument("trajectory", metavar="TRAJ")
    v.add_argument("-o", "--output", metavar="FILE", help="where to write the page (default: TRAJ with .html)")
    v.add_argument("--no-open", action="store_true", help="only write the page")
    v.set_defaults(func=cmd_view)


def render_text(paths: list[str], fmt: str, *, prompt_version: str = "v3.1", reasoning: bool = True) -> str:
    if fmt == "openai":
        from agentkit.render.openai import export_openai_jsonl

        return export_openai_jsonl(paths, reasoning=reasoning)
    if len(paths) != 1:
        raise ConfigError(f"--format {fmt} renders one trajectory at a time; got {len(paths)}")
    if fmt == "deepseek":
        from agentkit.render.trajectories import render_deepseek

        return render_deepseek(paths[0], version=prompt_version)
    if fmt == "html":
        from agentkit.render.html import render_html

        return render_html(paths[0])
    from agentkit.render.markdown import render_markdown

    return render_markdown(paths[0])


def _write(text: str, output: str | None) -> None:
    if output and output != "-":
        target = pathlib.Path(output)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write {output}: {e.strerror or e}") from None
        return
    sys.stdout.write(text)
    sys.stdout.flush()


def cmd_render(args: argparse.Namespace) -> int:
    text = render_text(args.trajectories, args.format, prompt_version=args.prompt_version,
                       reasoning=not args.no_reasoning)
    _write(text, args.output)
    return 0


def _can_open() -> bool:
    """A graphical browser is likely: never start a console browser that would take over the terminal."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_view(args: argparse.Namespace) -> int:
    from agentkit.render.html import render_html

    out = pathlib.Path(args.output) if args.output else pathlib.Path(args.trajectory).with_suffix(".html")
    _write(render_html(args.trajectory), str(out))
    url = out.resolve().as_uri()
    print(url)
    if not args.no_open:
        if _can_open():
            import webbrowser

            webbrowser.open(url)
        else:
            print("no graphical display here; open the file above in a browser", file=sys.stderr)
    return 0
