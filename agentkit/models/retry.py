"""What to retry, how long to wait, and the typed error for what cannot be retried.

Retried: 408, 409, 429, 5xx, timeouts, dropped connections and streams, malformed chunks.
Not retried: 400/401/402/403/404/413/422 become ``BadRequest``/``AuthError``/``PaymentRequired``/
``ContextWindowExceeded`` with one line that says what to do.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

from agentkit.errors import (AuthError, BadRequest, ContextWindowExceeded, ModelError, PaymentRequired,
                             RateLimited)

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
_CONTEXT_RE = re.compile(r"context[ _-]?(length|window)|maximum context|too many tokens|prompt is too long|"
                         r"context_length_exceeded|token_limit_exceeded|input is too long|reduce the length",
                         re.IGNORECASE)
_NON_RETRYABLE_CODES = frozenset({"invalid_request", "invalid_request_error", "context_length_exceeded",
                                  "authentication", "permission_denied", "payment_required", "not_found",
                                  "content_policy_violation", "invalid_prompt", "unprocessable"})


@dataclass
class Backoff:
    """Exponential backoff with jitter; a server's Retry-After wins (up to ``max_retry_wait_s``)."""

    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_wait_s: float = 120.0
    rng: random.Random | None = None

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, retry_after)
        r = self.rng or random
        cap = min(self.max_s, self.base_s * (2 ** attempt))
        return cap / 2 + r.uniform(0, cap / 2)  # "equal jitter": never zero, never in lockstep


def parse_retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date), ``retry-after-ms``, or an
    OpenRouter ``error.availability.retry_after``."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    err = body.get("error") if isinstance(body, dict) else None
    avail = err.get("availability") if isinstance(err, dict) else None
    if isinstance(avail, dict) and isinstance(avail.get("retry_after"), (int, float)):
        return float(avail["retry_after"])
    return None


def error_message(body: Any, text: str = "") -> str:
    """The server's own words, whatever shape its error body has, on one line."""
    msg = _raw_message(body, text)
    msg = " ".join(msg.split())
    return msg if len(msg) <= 400 else msg[:397] + "..."


def _raw_message(body: Any, text: str) -> str:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg") or err.get("detail") or ""
            raw = (err.get("metadata") or {}).get("raw") if isinstance(err.get("metadata"), dict) else None
            if raw and isinstance(raw, str) and raw not in str(msg):
                msg = f"{msg} ({raw[:300]})"
            if msg:
                return str(msg)
        elif isinstance(err, str):
            return err
        if isinstance(body.get("detail"), str):
            return body["detail"]
    return " ".join((text or "").split())[:300] or "no error message"


def error_type(body: Any) -> str | None:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None
    meta = err.get("metadata") if isinstance(err.get("metadata"), dict) else {}
    for v in (meta.get("error_type"), err.get("type"), err.get("code")):
        if isinstance(v, str):
            return v
    return None


def http_error(status: int, headers: Mapping[str, str], text: str, *, model: str, provider: str,
               key_source: str, context_window: int | None) -> ModelError:
    """The typed error for an HTTP error response; ``retryable`` says whether to try again."""
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    msg = error_message(body, text)
    etype = error_type(body)
    retry_after = parse_retry_after(headers, body)
    where = f"{provider} ({model})"
    if _is_context_error(msg, etype) and status < 500:
        return context_error(msg, model=model, window=context_window, status=status)
    if status == 401:
        return AuthError(f"{where} rejected the API key (401: {msg}); check {key_source}", status=status)
    if status == 403:
        return AuthError(f"{where} refused the request (403: {msg}); check that the key in {key_source} "
                         "may use this model", status=status)
    if status == 402:
        return PaymentRequired(f"{where}: out of credits (402: {msg}); add credits or raise the key's limit",
                               status=status)
    if status == 429:
        return RateLimited(f"{where} is rate limiting (429: {msg})", retry_after=retry_after, status=status)
    avail = body.get("error", {}).get("availability") if isinstance(body, dict) and \
        isinstance(body.get("error"), dict) else None
    if status in RETRY_STATUSES or status >= 500:
        retryable = not (isinstance(avail, dict) and avail.get("retryable") is False)
        return ModelError(f"{where} failed with HTTP {status}: {msg}", status=status, retryable=retryable,
                          retry_after=retry_after)
    if status == 404:
        return BadRequest(f"{where}: not found (404: {msg}); check the model id and the base URL", status=status)
    return BadRequest(f"{where} rejected the request (HTTP {status}: {msg})", status=status)


def stream_error(err: Any, *, model: str, provider: str, context_window: int | None,
                 partial: Any = None) -> ModelError:
    """The error for a body or mid-stream chunk carrying a top-level ``error`` (code int or string)."""
    body = {"error": err}
    msg = error_message(body)
    code = err.get("code") if isinstance(err, dict) else None
    etype = error_type(body)
    where = f"{provider} ({model})"
    if _is_context_error(msg, etype):
        e = context_error(msg, model=model, window=context_window, status=code if isinstance(code, int) else None)
        e.partial = partial
        return e
    if isinstance(code, int):
        retryable = code in RETRY_STATUSES or code >= 500
        status: int | None = code
    else:
        retryable = not (isinstance(code, str) and code in _NON_RETRYABLE_CODES) and \
            not (etype in _NON_RETRYABLE_CODES)
        status = None
    if code == 429:
        return RateLimited(f"{where} stream ended with an error (429: {msg})", status=429, partial=partial)
    return ModelError(f"{where} stream ended with an error ({code}: {msg})", status=status, retryable=retryable,
                      partial=partial)


def context_error(msg: str, *, model: str, window: int | None, status: int | None) -> ContextWindowExceeded:
    if window is None:
        m = re.search(r"(?:maximum context length|context (?:length|window))\D{0,20}(\d[\d,]*)", msg, re.I)
        if m:
            window = int(m.group(1).replace(",", ""))
    size = f"{window:,}-token" if window else "context"
    return ContextWindowExceeded(f"the prompt does not fit {model}'s {size} window ({msg}); shorten the history "
                                 "or lower max_tokens", status=status, window=window)


def _is_context_error(msg: str, etype: str | None) -> bool:
    return etype in ("context_length_exceeded", "token_limit_exceeded") or bool(_CONTEXT_RE.search(msg or ""))
