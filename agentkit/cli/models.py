"""``agentkit models``: the model catalog and the provider presets."""

from __future__ import annotations

import argparse

from agentkit.cli.common import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the known models, their prices and the providers",
                       description="The model catalog (context window, prices per million tokens) and providers.")
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")
    p.add_argument("--refresh", action="store_true",
                   help="read OpenRouter's public model list (context, prices) into the user cache "
                        "($XDG_CACHE_HOME/agentkit/openrouter-models.json), which overrides the built-in table")
    p.add_argument("--api-base", default=None, help="where --refresh reads GET /models (default: OpenRouter's API)")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from agentkit.models.catalog import OPENROUTER_API, all_models, refresh
    from agentkit.models.providers import PROVIDERS

    if args.refresh:
        import httpx

        from agentkit.errors import ConfigError

        try:
            path, n = refresh(args.api_base or OPENROUTER_API)
        except (httpx.HTTPError, ValueError) as e:
            raise ConfigError(f"agentkit models --refresh: could not read the model list: {e}") from None
        print(f"{n} models from {(args.api_base or OPENROUTER_API).rstrip('/')}/models cached in {path}")
        return 0
    models = all_models()
    if args.json:
        print_json({"models": [m.model_dump(mode="json") for m in models],
                    "providers": [{"name": p.name, "base_url": p.base_url, "key_env": p.key_env,
                                   "description": p.description} for p in PROVIDERS.values()]})
        return 0
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=140)  # pipes default to 80 columns, too narrow for ids
    table = Table(title="Models (USD per million tokens)")
    for col, justify in (("model", "left"), ("provider", "left"), ("context", "right"), ("max out", "right"),
                         ("input", "right"), ("cache hit", "right"), ("output", "right"), ("thinking", "center"),
                         ("tools", "center")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for m in models:
        table.add_row(m.id, m.provider, f"{m.context_window:,}", f"{m.max_output:,}", f"{m.input_per_m:.2f}",
                      "-" if m.cache_hit_per_m is None else f"{m.cache_hit_per_m:.2f}", f"{m.output_per_m:.2f}",
                      "yes" if m.thinking else "no", "yes" if m.tools else "no")
    console.print(table)
    prov = Table(title="Providers (--provider)")
    for col in ("name", "base URL", "key variable", "notes"):
        prov.add_column(col)
    for p in PROVIDERS.values():
        prov.add_row(p.name, p.base_url or "(--base-url)", p.key_env + ("" if p.key_required else " (optional)"),
                     p.description)
    prov.add_row("raw", "(--base-url)", "AGENTKIT_API_KEY (optional)",
                  "/v1/completions with agentkit's own DeepSeek prompt renderer")
    console.print(prov)
    console.print("Prices are list prices at the dates in `agentkit models --json`; a provider-reported "
                  "usage.cost always wins.", style="dim")
    return 0
