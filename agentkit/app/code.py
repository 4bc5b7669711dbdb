"""The code agent from Python: ``run_code`` does what ``agentkit code`` does and returns a ``CodeResult``.

It copies the repository (never edits it unless ``in_place=True``), runs the ``code`` preset in a
sandbox, runs ``test_cmd`` there, and writes the same run folder as the CLI (trajectory, result.json,
patch.diff, HTML view). The patch and the test result come back on the ``CodeResult``, so nothing
needs to be read from the folder::

    result = run_code_sync("Fix the failing test", repo="path/to/repo",
                           model="deepseek/deepseek-chat-v3.1", test_cmd="pytest -q")
    print(result.status, result.test.passed if result.test else "no tests")
    print(result.patch)

A run that ends ``error`` raises its typed error as ``Agent.run`` does, with the ``CodeResult`` on
``.result``; mistakes in the arguments (no such repository, a price missing for
``Limits(max_cost_usd=...)``) are a ``ConfigError`` before anything runs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, Field, ValidationError

from agentkit.agent import Limits, RunResult
from agentkit.agent.runs import EventCallback, call_sync
from agentkit.app.progress import Progress
from agentkit.app.workspace import DEFAULT_MAX_COPY_BYTES
from agentkit.errors import ConfigError, first_error
from agentkit.models.base import Model

P = ParamSpec("P")
T = TypeVar("T")


class TestResult(BaseModel):
    """The test command's outcome, run in the sandbox from the workspace root after the agent ended.

    ``exit_code`` is None when the command was killed (``timed_out``); ``output`` is the tail of
    what it printed (the last 4,000 characters)."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    cmd: str
    exit_code: int | None
    passed: bool
    timed_out: bool = False
    output: str = ""


class CodeResult(RunResult):
    """A finished code-agent run: the ``RunResult`` fields plus what the CLI writes to files.

    ``patch``: the change as ``git diff`` against the starting point ("" when nothing changed);
    ``changed_files``: the paths it touches; ``test``: the test command's result (None without
    ``test_cmd``, or when the agent made no step); ``out``: the run folder; ``workspace``: the working
    copy, when it is still there (a ``done`` run's copy is removed unless ``keep_workspace``)."""

    patch: str = ""
    changed_files: list[str] = Field(default_factory=list)
    test: TestResult | None = None
    out: str = ""
    workspace: str | None = None

    @property
    def ok(self) -> bool:
        """The run ended ``done`` and its tests, if any, passed (the CLI's exit code 0)."""
        return self.status == "done" and (self.test is None or self.test.passed)


class _Events(Progress):
    """A silent progress display that hands each agent event to the caller's ``on_event``."""

    def __init__(self, on_event: EventCallback | None) -> None:
        super().__init__("quiet")
        self._on_event = on_event

    def update(self, event: Any) -> None:
        super().update(event)
        if self._on_event is not None:
            self._on_event(event)


async def run_code(task: str, *, repo: str | os.PathLike[str], model: Model | str, test_cmd: str | None = None,
                   test_timeout: float = 900.0, out: str | os.PathLike[str] | None = None,
                   sandbox: Literal["local", "docker"] = "local", image: str | None = None, network: bool = False,
                   setup_cmd: str | None = None, env: Mapping[str, str] | None = None,
                   limits: Limits | None = None, prices: tuple[float, float] | None = None,
                   in_place: bool = False, keep_workspace: bool = False,
                   max_copy_bytes: int | None = DEFAULT_MAX_COPY_BYTES,
                   on_event: EventCallback | None = None) -> CodeResult:
    """Run the code agent on a copy of ``repo`` and return its ``CodeResult`` (patch and tests included).

    ``model``: a ``Model`` (yours to close) or a name for ``make_model``. ``test_cmd`` runs in the
    sandbox after the agent, within ``test_timeout`` seconds; ``setup_cmd`` runs once before it.
    ``out``: the run folder (default: a new folder under the per-user runs folder, as for the CLI).
    ``sandbox``/``image``/``network``/``env``: where commands run (``image`` needs
    ``sandbox='docker'``). ``limits``: the run's budgets; ``prices``: USD per million input/output
    tokens for a model the catalog does not price. ``on_event`` gets each event ``Agent.iter``
    yields. Raises the typed error of a run that ends ``error`` (``.result`` is the ``CodeResult``)."""
    from agentkit.app import runner

    limits = limits or Limits()
    name = model if isinstance(model, str) else model.name
    try:
        opts = runner.RunOptions(
            preset="code", task=task, repo=os.fspath(repo), model=name,
            provider=None if isinstance(model, str) else getattr(model, "provider", None),
            test_cmd=test_cmd, test_timeout=test_timeout, out=os.fspath(out) if out is not None else None,
            sandbox=sandbox, image=image, network=network, setup_cmd=setup_cmd, env=dict(env or {}),
            max_steps=limits.max_steps, max_cost=limits.max_cost_usd, price=prices, in_place=in_place,
            keep_workspace=keep_workspace, max_copy_bytes=max_copy_bytes, progress="quiet")
    except ValidationError as e:  # an argument of the wrong kind is a one-line ConfigError, as elsewhere
        where, msg = first_error(e, "arguments")
        raise ConfigError(f"{where}: {msg}") from None
    if isinstance(model, str):
        built, prep = await runner._model_and_prep(opts)
    else:
        runner.check_price(opts, model.name)
        built, prep = model, runner._prepare(opts)
    finished = await runner.execute(prep, built, _Events(on_event), None, close_model=isinstance(model, str),
                                    limits=limits)
    result = _code_result(finished, prep.workdir)
    if finished.error is not None:
        finished.error.result = result
        raise finished.error
    return result


def _code_result(finished: Any, workdir: Path | None) -> CodeResult:
    from agentkit.app.runner import PATCH

    data, run = finished.result, finished.run
    fields: dict[str, Any] = ({k: getattr(run, k) for k in RunResult.model_fields} if run is not None
                              else {"status": data.get("status") or "error", "error": data.get("error")})
    out = Path(data["out"])
    patch = out / PATCH
    return CodeResult(**fields, patch=patch.read_text(encoding="utf-8") if patch.is_file() else "",
                      changed_files=list(data.get("changed_files") or []),
                      test=TestResult.model_validate(data["test"]) if data.get("test") else None,
                      out=str(out), workspace=str(workdir) if workdir is not None and workdir.is_dir() else None)


def _sync(run: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    @functools.wraps(run)
    def sync(*args: P.args, **kw: P.kwargs) -> T:
        async def go() -> T:
            try:
                return await run(*args, **kw)
            finally:  # a lent model's connections belong to the private loop that ends here
                model = kw.get("model")
                if model is not None and not isinstance(model, str):
                    await model.aclose()  # type: ignore[attr-defined]

        return call_sync(go)

    return sync


run_code_sync = _sync(run_code)
run_code_sync.__doc__ = """``run_code`` for synchronous code (also inside a running event loop, e.g. Jupyter):
the ``CodeResult``, or the typed error of a failed run raised. Takes the same arguments. As with
``Agent.run_sync``, a ``Model`` you pass has its connections closed when the run ends."""

__all__ = ["CodeResult", "TestResult", "run_code", "run_code_sync"]
