"""Masking secrets in text that is shown to people, logged or stored.

A server may echo the key back in an error body and a ``--base-url`` may carry
``user:password@``; neither may reach the terminal, a log or a trajectory. ``redact`` masks the
literal keys it is given plus the usual key shapes (``sk-…``, ``Bearer …``, URL passwords,
``?api_key=`` query values); ``mask_url`` masks a URL's password only, so the URL stays readable.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

MASK = "***"

_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")
_QUERY_SECRET = re.compile(r"([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password)=)[^&#\s\"']+",
                           re.IGNORECASE)
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_-]{15,}")


def mask_url(url: str | None) -> str | None:
    """``url`` with the password of its user info (and secret query values) replaced by ``***``."""
    if not url or ("@" not in url and "=" not in url):
        return url
    return _QUERY_SECRET.sub(r"\1" + MASK, _URL_PASSWORD.sub(r"\1" + MASK + "@", url))


def mask_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1" + MASK + "@", text) if "://" in text and "@" in text else text


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets and anything shaped like a key, a bearer token or a URL
    password masked (short secrets, under 4 characters, would mask ordinary text and are left)."""
    for s in secrets:
        if s and len(s) >= 4 and s in text:
            text = text.replace(s, MASK)
    if "sk-" in text:
        text = _SK_KEY.sub("sk-" + MASK, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1" + MASK, text)
    text = mask_passwords(text)
    if "=" in text:
        text = _QUERY_SECRET.sub(r"\1" + MASK, text)
    return text


REDACTED = "[redacted]"  # what stands where a secret was (trajectories, stored options)
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION", re.IGNORECASE)


def mask_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` as it may be stored: the value of a key whose name looks secret (``*_KEY``, ``*TOKEN*``,
    ``*PASSWORD*``, ...) is the trajectory's ``[redacted]``, and every other value is ``redact``-ed."""
    return {k: REDACTED if _SECRET_NAME.search(k) else redact(v) for k, v in env.items()}


def env_secrets(env: Any) -> list[str]:
    """The values of ``env``'s secret-looking keys (``mask_env``'s rule): what a sandbox's environment
    holds that must not be stored, even when a command prints it."""
    if not isinstance(env, dict):
        return []
    return [str(v) for k, v in env.items() if isinstance(k, str) and _SECRET_NAME.search(k) and v]


def model_secrets(model: Any) -> list[str]:
    """The keys a model (or every model of a fallback chain) sends, for masking them in logs."""
    found: list[str] = []
    for attr in ("api_key", "_api_key", "key"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            found.append(value)
    inner_models = getattr(model, "models", None)
    for inner in inner_models if isinstance(inner_models, (list, tuple)) else ():
        if inner is not model:
            found.extend(model_secrets(inner))
    return found


__all__ = ["MASK", "env_secrets", "mask_passwords", "mask_url", "model_secrets", "redact"]
