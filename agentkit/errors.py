"""Errors a user can act on: each carries a one-line message that says what to do.

The CLI prints ``str(error)`` and exits with ``exit_code``; library users catch the type.
``Agent.run()``/``run_sync()`` raise the error that ended a run (status ``error``) with the
run's ``RunResult`` on ``.result`` and its trajectory file on ``.trajectory_path``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: errors are the lowest layer
    from agentkit.agent.record import RunResult


class AgentkitError(Exception):
    """Base of every error agentkit raises on purpose. ``str()`` is one actionable line.

    ``result`` and ``trajectory_path`` are set when the error ended an agent run (``None``
    otherwise): the run's ``RunResult`` (steps, usage, messages so far) and its JSONL file."""

    exit_code: int = 1
    result: RunResult | None = None
    trajectory_path: str | None = None

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ConfigError(AgentkitError):
    """Bad settings or arguments from the user (exit code 2)."""

    exit_code = 2


class ModelError(AgentkitError):
    """The model endpoint failed in a way retrying will not fix (or retries ran out)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 partial: object | None = None, **details: object) -> None:
        super().__init__(message, **details)
        self.status = status
        self.retryable = retryable
        self.partial = partial  # whatever was received before the failure (e.g. a partial Completion)


class AuthError(ModelError):
    """401/403: the key is missing, wrong or not allowed (names the environment variable)."""

    exit_code = 2


class PaymentRequired(ModelError):
    """402: the account or key has no credits left."""

    exit_code = 2


class BadRequest(ModelError):
    """400/404/422: the request itself is wrong; retrying it unchanged cannot help."""


class RateLimited(ModelError):
    """429 after retries were exhausted."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, retryable=True, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ContextWindowExceeded(ModelError):
    """The prompt does not fit the model's context window."""


class SandboxError(AgentkitError):
    """The sandbox could not start, or an operation on it was refused."""


class ToolError(AgentkitError):
    """A tool failed in a way the model should be told about (becomes an error observation)."""


def first_error(error: Any, default: str) -> tuple[str, str]:
    """Where a pydantic ``ValidationError`` went wrong first (dotted field path, or ``default``) and
    its message: what a one-line ``ConfigError`` about a bad file or record says."""
    err = error.errors()[0]
    return ".".join(str(x) for x in err.get("loc", ())) or default, err["msg"]
