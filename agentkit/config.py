"""Settings that stick: the defaults users would otherwise retype, from files and the environment.

Sources, strongest first: command-line flags > ``AGENTKIT_*`` environment variables > the repo's
``agentkit.toml`` > the user's ``$XDG_CONFIG_HOME/agentkit/config.toml`` (``~/.config/...``) >
built-in defaults. Both files are flat TOML tables of the keys in ``SETTINGS`` (``base_url`` or
``base-url``)::

    model = "deepseek/deepseek-chat-v3.1"
    sandbox = "docker"
    max_steps = 80
    max_cost = 5.0      # USD per run, or "none"
    test_cmd = "pytest -q"

A repository is not trusted with where your API key goes: its ``agentkit.toml`` may not set
``base_url`` (set it in your own config, ``AGENTKIT_BASE_URL`` or ``--base-url``).
``agentkit config show`` prints each effective value and where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.errors import ConfigError

REPO_FILE = "agentkit.toml"


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if str(value) not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return str(value)
    return check


def _positive(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"must be a {'whole ' if kind is int else ''}number")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a {'whole ' if kind is int else ''}number") from None
        if kind is int and isinstance(value, float) and value != number:
            raise ValueError("must be a whole number")
        if number <= 0:
            raise ValueError("must be more than 0")
        return number
    return check


def _cost(value: Any) -> Any:
    """A cost cap in USD, or ``"none"`` for no cap (what ``--max-cost none`` says)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return "none"
    return _positive(float)(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


# key -> (parser, built-in default, what the built-in means)
SETTINGS: dict[str, tuple[Callable[[Any], Any], Any, str]] = {
    "provider": (_text, None, "from the model name and the keys set"),
    "model": (_text, "deepseek/deepseek-chat-v3.1", ""),
    "base_url": (_text, None, "the provider's own"),
    "sandbox": (_choice("local", "docker"), "local", ""),
    "image": (_text, None, "agentkit-sandbox:latest for --sandbox docker"),
    "max_steps": (_positive(int), None, "50"),
    "max_cost": (_cost, None, "$2 per run when the model has a known price; \"none\": no cap"),
    "test_cmd": (_text, None, "none"),
}
REPO_REFUSED = {"base_url": "a repository's config may not say where your API key goes; set it in your own "
                            "config, AGENTKIT_BASE_URL or --base-url"}
# Budgets a cloned repository (which may want more of your money: SECURITY.md) may only lower, against
# the user's config or the built-in default (max_cost: the $2 default cap of a priced model).
REPO_LOWERS_ONLY: dict[str, Any] = {"max_steps": 50, "max_cost": 2.0}


def _lower(value: Any, than: Any) -> bool:
    """Whether ``value`` is a budget no larger than ``than`` ("none" is no cap: larger than any)."""
    if value == "none":
        return than == "none"
    return than == "none" or value <= than


def env_var(key: str) -> str:
    return f"AGENTKIT_{key.upper()}"


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path(env.get("HOME") or Path.home()) / ".config"
    return root / "agentkit" / "config.toml"


@dataclass(frozen=True)
class Setting:
    key: str
    value: Any
    source: str  # "flag --model", "env AGENTKIT_MODEL", "repo /x/agentkit.toml", "user /y/config.toml", "built-in"
    note: str = ""  # e.g. why a file's value was not taken


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read it ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    out: dict[str, Any] = {}
    for raw, value in data.items():
        key = raw.replace("-", "_")
        if key not in SETTINGS:
            raise ConfigError(f"{path}: unknown setting {raw!r}; known: {', '.join(SETTINGS)}")
        out[key] = _parse(key, value, str(path))
    return out


def _parse(key: str, value: Any, where: str) -> Any:
    try:
        return SETTINGS[key][0](value)
    except ValueError as e:
        raise ConfigError(f"{where}: {key} = {value!r}: {e}") from None


def load_settings(repo: str | os.PathLike[str] | None = None, flags: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None) -> dict[str, Setting]:
    """The effective value of every key in ``SETTINGS`` with its source. ``flags``: values given on
    the command line (None means not given); ``repo``: the folder whose ``agentkit.toml`` counts
    (default: the current directory)."""
    env = os.environ if env is None else env
    flags = flags or {}
    user_path = user_config_path(env)
    repo_path = Path(repo if repo is not None else ".").expanduser().resolve() / REPO_FILE
    user = _read_file(user_path) if user_path.is_file() else {}
    local = _read_file(repo_path) if repo_path.is_file() else {}
    out: dict[str, Setting] = {}
    for key, (_, default, _) in SETTINGS.items():
        note = ""
        if key in local and key in REPO_REFUSED:
            note = f"{repo_path} sets {key}, not taken: {REPO_REFUSED[key]}"
            local.pop(key)
        elif key in local and key in REPO_LOWERS_ONLY and not _lower(local[key], user.get(key, REPO_LOWERS_ONLY[key])):
            note = (f"{repo_path} sets {key} = {local[key]}, not taken: a repository's config may lower a budget, "
                    f"not raise it; raise it in your own config, {env_var(key)} or --{key.replace('_', '-')}")
            local.pop(key)
        var = env_var(key)
        if flags.get(key) is not None:
            setting = Setting(key, flags[key], f"flag --{key.replace('_', '-')}", note)
        elif env.get(var, "").strip():
            setting = Setting(key, _parse(key, env[var], f"environment variable {var}"), f"env {var}", note)
        elif key in local:
            setting = Setting(key, local[key], f"repo {repo_path}", note)
        elif key in user:
            setting = Setting(key, user[key], f"user {user_path}", note)
        else:
            setting = Setting(key, default, "built-in", note)
        out[key] = setting
    return out


def describe(settings: Mapping[str, Setting]) -> str:
    """The table ``agentkit config show`` prints."""
    width = max(len(k) for k in settings)
    lines = []
    for key, s in settings.items():
        value = s.value if s.value is not None else f"(unset: {SETTINGS[key][2]})" if SETTINGS[key][2] else "(unset)"
        lines.append(f"{key:<{width}}  {value!s:<40}  {s.source}")
        if s.note:
            lines.append(f"{'':<{width}}  note: {s.note}")
    return "\n".join(lines)
