"""One run of a preset from start to files on disk; shared by the CLI, batch runs and Ray workers.

The output folder holds everything a run produced: ``trajectory.jsonl``, ``result.json``, the HTML
view, and ``patch.diff`` (code) or ``answer.md`` (research). For code runs the working copy lives in
``workspace/`` inside it, which is what makes ``agentkit resume`` possible; it is removed when the run
ends ``done`` (unless ``keep_workspace``), and kept otherwise so the run can be resumed.

By default run folders go under a per-user data folder (``runs_root()``), never inside the repo.

Why one module over 450 lines: it is the one path from options to a finished run folder (start,
resume, batch tasks and Ray workers all go through it), and the checks on a resumed trajectory
that may be someone else's sit next to the code they guard.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentkit.app.progress import Progress
from agentkit.app.workspace import (DEFAULT_MAX_COPY_BYTES, Baseline, check_repo, copy_repo, remove_workspace,
                                    sync_tree)
from agentkit.errors import ConfigError, SandboxError, first_error
from agentkit.presets import get_preset
from agentkit.presets.base import Preset, ToolOptions
from agentkit.sandboxes.base import env_name_problem
from agentkit.tools.base import Source

DEFAULT_MODEL = "deepseek/deepseek-chat-v3.1"
DEFAULT_MAX_COST = 2.0  # USD: the CLI's cap on one run of a priced model when --max-cost is not given
TRAJECTORY, RESULT, PATCH, HTML, ANSWER = "trajectory.jsonl", "result.json", "patch.diff", "trajectory.html", "answer.md"
WORKSPACE, BASELINE = "workspace", ".baseline.git"
TEST_OUTPUT_CHARS = 4000
SETUP_TIMEOUT = 1800.0  # seconds for --setup-cmd (installing a project may take a while)
SETUP_TAIL_LINES = 20  # lines of a failed --setup-cmd's output shown in its error


class RunOptions(BaseModel):
    """Everything a run needs besides secrets (keys come from the environment), as the CLI gives it."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["code", "research"] = "code"
    task: str = ""
    repo: str | None = None
    in_place: bool = False
    keep_workspace: bool = False  # keep workspace/ after a run that ended done (kept anyway otherwise)
    max_copy_bytes: int | None = DEFAULT_MAX_COPY_BYTES  # plain copies of non-git folders; None: no limit
    test_cmd: str | None = None
    test_timeout: float = 900.0
    out: str | None = None
    run_id: str | None = None
    model: str | None = None
    provider: str | None = None
    base_url: str | None = None
    thinking: bool | None = None  # None: the preset's mode
    tool_mode: Literal["native", "prompt", "auto"] | None = None  # None: auto
    template: str | None = None  # raw prompt format; None: from the model id
    price: tuple[float, float] | None = None  # --price IN,OUT: USD per million tokens for an unpriced model
    request_timeout: float | None = None  # seconds per model call; None: ModelSettings' default
    sandbox: Literal["local", "docker"] = "local"
    image: str | None = None
    network: bool = False  # commands in the sandbox may reach the network
    setup_cmd: str | None = None  # run once in the sandbox, in the workspace, before the agent starts
    env: dict[str, str] = Field(default_factory=dict)  # set in the sandbox's environment (secret values not stored)
    max_steps: int | None = None
    max_cost: float | None = None
    # the cap when max_cost is None and the model has a known price (the CLI gives DEFAULT_MAX_COST;
    # self-hosted servers and replays get none); None: no cap
    default_max_cost: float | None = None
    python: bool = False
    search_backend: str | None = None
    max_searches: int | None = None
    fetch_allow: list[str] = Field(default_factory=list)
    confirm: bool = False
    progress: Literal["auto", "live", "plain", "quiet"] = "auto"
    html: bool = True

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        """A name goes into the sandbox shell's export line: a trajectory's stored options (resume) or a
        caller's env may not smuggle a command in through one."""
        problem = env_name_problem(env)
        if problem:
            raise ValueError(problem)
        return env


def slug(text: str, n: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (words[:n].rstrip("-") or "run")


def runs_root() -> Path:
    """Where run folders go by default: ``$XDG_DATA_HOME/agentkit/runs`` (``~/.local/share/agentkit/runs``)."""
    data = os.environ.get("XDG_DATA_HOME") or ""
    base = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"
    return base / "agentkit" / "runs"


def default_out(task: str, root: str | Path | None = None) -> Path:
    root = runs_root() if root is None else root
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{slug(task)}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = Path(f"{base}-{i}")
    return path


def read_task(task: str) -> str:
    """TASK as given, or the contents of the file when it is ``@path``."""
    if task.startswith("@"):
        path = Path(task[1:]).expanduser()
        if not path.is_file():
            raise ConfigError(f"task file {task[1:]} not found; pass the task as text or @FILE with an existing file")
        return path.read_text(encoding="utf-8")
    return task


# -- building the parts -------------------------------------------------------------------------------

def build_model(opts: RunOptions) -> Any:
    from agentkit.models import make_model

    from agentkit.models import ModelSettings

    # no --model: the provider's default (providers.default_model)
    settings = ModelSettings(tool_mode=opts.tool_mode) if opts.tool_mode else None
    model = make_model(opts.model, provider=opts.provider, base_url=opts.base_url, settings=settings,
                       template=opts.template)
    check_price(opts, model.name)
    return model


def check_price(opts: RunOptions, model: str) -> None:
    """``--price`` prices the model for this process; ``--max-cost`` on a model with no known price
    is refused rather than silently not enforced. The messages name the library's parameters, which
    the CLI prints as its flags (``agentkit.cli.cli_words``)."""
    from agentkit.models.catalog import lookup, set_price

    if opts.price is not None:
        set_price(model, *opts.price)
    if opts.max_cost is not None and not model.startswith("replay:") and lookup(model) is None:
        raise ConfigError(f"Limits(max_cost_usd=...) needs a price, and {model!r} has none in the catalog: give "
                          "one with prices=(IN, OUT) (USD per million tokens), run `agentkit models --refresh`, "
                          "or drop Limits(max_cost_usd=...)")


def has_price(model: Any) -> bool:
    """Whether runs of ``model`` cost money agentkit can count: the catalog (or ``--price``) prices it and
    it is not a replay or a self-hosted server (vLLM, SGLang, llama.cpp), whose catalog price would be
    someone else's bill."""
    from agentkit.models.catalog import lookup
    from agentkit.models.providers import PROVIDERS

    name = str(getattr(model, "name", model))
    provider = PROVIDERS.get(str(getattr(model, "provider", "")))
    return (not name.startswith("replay:") and lookup(name) is not None
            and (provider is None or provider.key_required))


def with_cost_cap(opts: RunOptions, model: Any) -> RunOptions:
    """``opts`` with ``default_max_cost`` applied: the run's cap when no ``max_cost`` was given and the
    model has a price (``has_price``)."""
    if opts.max_cost is None and opts.default_max_cost is not None and has_price(model):
        return opts.model_copy(update={"max_cost": opts.default_max_cost})
    return opts


def limits_line(opts: RunOptions, model: Any) -> str:
    """The start line that says what stops the run: its steps and its cost cap, and how to change them."""
    from agentkit.agent import Limits

    steps = opts.max_steps or Limits().max_steps
    if opts.max_cost is None:
        cost = ("no cost cap" if opts.default_max_cost is None
                else f"no cost cap ({getattr(model, 'name', model)} has no known price)")
    elif opts.default_max_cost is not None and opts.max_cost == opts.default_max_cost:
        cost = f"cost cap ${opts.max_cost:.2f} (the default; --max-cost USD or none to change it)"
    else:
        cost = f"cost cap ${opts.max_cost:.2f}"
    return f"limits: {steps} steps, {cost}"


def build_limits(opts: RunOptions) -> Any:
    from agentkit.agent import Limits

    kw: dict[str, Any] = {}
    if opts.max_steps is not None:
        kw["max_steps"] = opts.max_steps
    if opts.max_cost is not None:
        kw["max_cost_usd"] = opts.max_cost
    return Limits(**kw)


async def open_sandbox(opts: RunOptions, workspace: Path) -> Any:
    from agentkit.sandboxes import make_sandbox

    kw: dict[str, Any] = {"network": opts.network}
    if opts.env:
        kw["env"] = dict(opts.env)
    if opts.sandbox == "docker" and opts.image:
        kw["image"] = opts.image
    try:
        sandbox = make_sandbox(opts.sandbox, workspace=str(workspace), **kw)
        await sandbox.start()
    except SandboxError as e:
        if opts.sandbox == "docker":
            raise ConfigError(f"sandbox='docker': {e}; or run with sandbox='local'") from None
        raise
    return sandbox


def tool_options(opts: RunOptions) -> ToolOptions:
    return ToolOptions(search_backend=opts.search_backend, max_searches=opts.max_searches,
                       fetch_allow=list(opts.fetch_allow), confirm=opts.confirm)


# -- running ---------------------------------------------------------------------------------------------

class _Prepared(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    opts: RunOptions
    preset: Preset
    out: Path
    workdir: Path | None = None
    baseline: Any = None
    test_cmd_given: bool = True  # False: it came from a trajectory file, which may be someone else's
    setup_cmd_given: bool = True  # likewise for --setup-cmd


def _prepare(opts: RunOptions, resume: bool = False, note: Any = None) -> _Prepared:
    preset = get_preset(opts.preset, python=opts.python)
    if opts.thinking is not None and opts.thinking != preset.thinking:
        preset = preset.model_copy(update={"thinking": opts.thinking})
    if opts.request_timeout is not None:  # into the agent's settings, so the trajectory records it
        from agentkit.models.base import ModelSettings

        timeout = ModelSettings(request_timeout=opts.request_timeout)
        preset = preset.model_copy(update={"settings": preset.settings.merged(timeout)})
    if not opts.task.strip() and not resume:
        raise ConfigError("the task is empty; pass the task text or @FILE")
    if opts.image and opts.sandbox != "docker":
        raise ConfigError("image=NAME is for the Docker sandbox: add sandbox='docker' or drop image=NAME")
    out = Path(opts.out).expanduser() if opts.out else default_out(opts.task)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    if opts.repo:  # recorded absolute, so the run resumes from any directory
        repo_path = Path(opts.repo).expanduser()
        opts = opts.model_copy(update={"repo": str(repo_path.resolve()) if repo_path.is_dir() else opts.repo})
    opts = opts.model_copy(update={"out": str(out)})
    workdir = baseline = None
    seed = None
    if preset.name == "code":
        if resume:
            _check_run_folder(out)
        if resume and not opts.in_place and (out / WORKSPACE).is_dir():
            workdir = out / WORKSPACE  # the run's own copy: the repository it came from is not read
        elif not opts.repo:
            raise ConfigError("the code agent needs a repository: pass repo=PATH")
        elif opts.in_place:
            workdir = check_repo(opts.repo)
        else:  # a fresh run owns its folder: drop what an earlier, unfinished attempt left there
            repo = check_repo(opts.repo)
            for stale in (out / WORKSPACE, out / BASELINE):
                shutil.rmtree(stale, ignore_errors=True)
            workdir = copy_repo(repo, out / WORKSPACE, skip=out, max_bytes=opts.max_copy_bytes, note=note)
            seed = workdir / ".git" if (workdir / ".git").is_dir() else None
        baseline = Baseline.take(workdir, out / BASELINE, skip=out, seed=seed)
    elif preset.needs_sandbox:
        workdir = out / WORKSPACE
        workdir.mkdir(exist_ok=True)
    return _Prepared(opts=opts, preset=preset, out=out.resolve(), workdir=workdir, baseline=baseline)


_GIT_INIT_KEYS = {"repositoryformatversion", "filemode", "bare", "logallrefupdates", "ignorecase",
                  "precomposeunicode", "symlinks"}


def _check_run_folder(out: Path) -> None:
    """A run folder from someone else must not point outside itself (a ``workspace`` symlink to your
    home) or make git run commands on this machine (``core.fsmonitor``, filter drivers, hooks in the
    baseline repository, which git runs outside any sandbox)."""
    for name in (WORKSPACE, BASELINE):
        if (out / name).is_symlink():
            raise ConfigError(f"{out / name} is a symbolic link; resume works only on a run folder's own files")
    git = out / BASELINE
    if not git.is_dir():
        return
    config = (git / "config").read_text(encoding="utf-8", errors="replace") if (git / "config").is_file() else ""
    keys = {line.split("=", 1)[0].strip().lower() for line in config.splitlines()
            if line.strip() and not line.strip().startswith(("#", ";", "["))}
    sections = {line.strip().lower() for line in config.splitlines() if line.strip().startswith("[")}
    hooks = [p.name for p in (git / "hooks").iterdir()] if (git / "hooks").is_dir() else []
    if (keys - _GIT_INIT_KEYS or sections - {"[core]"} or (git / "info" / "attributes").exists()
            or any(not h.endswith(".sample") for h in hooks)):
        raise ConfigError(f"{git} has git settings or hooks agentkit did not write; refusing to run git on it "
                          "(delete it to resume without the original baseline)")


async def run_task(opts: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run one task to the end; returns the ``result.json`` content (also written to the folder)."""
    opts = opts.model_copy(update={"task": read_task(opts.task)})
    progress = progress or Progress(opts.progress)
    model, prep = await _model_and_prep(opts, note=progress.note)
    return await _execute(prep, model, progress, resume_from=None)


async def _model_and_prep(opts: RunOptions, resume: bool = False, note: Any = None) -> tuple[Any, _Prepared]:
    """The model first (a missing key fails before any file is written), then the run's folder and
    working copy; the model is closed again when preparing fails."""
    model = build_model(opts)
    try:
        return model, _prepare(with_cost_cap(opts, model), resume=resume, note=note)
    except BaseException:
        await model.aclose()
        raise


async def run_or_resume(opts: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run a task into ``opts.out``, or resume it when an earlier attempt left a trajectory there
    (a batch killed mid-run picks its unfinished tasks up where they stopped)."""
    path = Path(opts.out or "") / TRAJECTORY
    if opts.out and path.is_file():
        from agentkit.trajectory import Trajectory, read_records

        if read_records(path):  # empty: killed before its first line, so nothing to continue
            saved = Trajectory.load(path, strict=True).run.get("options")
            if isinstance(saved, dict):  # the caller's options, not the file's: they are the ones given now
                model, prep = await _model_and_prep(opts, resume=True)
                return await _execute(prep, model, progress, resume_from=path)
    return await run_task(opts, progress)


# Run settings ``agentkit resume`` does not take from a trajectory, which may be someone else's:
# where the API key goes, which private hosts fetch may reach, where searches go. The flag that
# confirms each; the repository of an in-place run and the test command are handled apart.
_UNTRUSTED = {"base_url": "--base-url", "fetch_allow": "--fetch-allow", "search_backend": "--search-backend"}


def is_own_url(opts: RunOptions) -> bool:
    """Whether the API key goes to its provider's own base URL (or nowhere: a replay)."""
    from agentkit.models.providers import PROVIDERS, infer_provider

    model = opts.model or DEFAULT_MODEL
    if not opts.base_url or model.startswith("replay:"):
        return True
    own = PROVIDERS.get(opts.provider or infer_provider(model, opts.base_url))
    own_url = own.base_url if own else None
    return bool(own_url) and own_url.rstrip("/") == opts.base_url.rstrip("/")


def _unconfirmed(opts: RunOptions, given: set[str], path: Path) -> list[str]:
    """The flags a resume must repeat before it may use what the trajectory says (see _UNTRUSTED)."""
    from agentkit.redact import mask_url

    need = []
    if "base_url" not in given and not is_own_url(opts):
        need.append(f"--base-url {mask_url(opts.base_url)} (your API key would be sent there)")
    if "fetch_allow" not in given and opts.fetch_allow:
        need.append(" ".join(f"--fetch-allow {a}" for a in opts.fetch_allow))
    if "network" not in given and opts.network:
        need.append("--network (the run let sandboxed commands reach the network)")
    if "env" not in given and opts.env:  # PATH, LD_PRELOAD, BASH_ENV, or a host secret it wants filled in
        need.append(" ".join(f"--env {k}=VALUE" for k in opts.env) + " (the run set these in its sandbox)")
    if "search_backend" not in given and opts.search_backend not in (None, "duckduckgo"):
        need.append(f"--search-backend {opts.search_backend}")
    if opts.preset == "code" and "repo" not in given and (opts.in_place or not (path.parent / WORKSPACE).is_dir()):
        need.append("--repo PATH (the run " + ("edited its repository in place)" if opts.in_place
                                                else "has no workspace/ folder left)"))
    return need


async def resume_task(trajectory: str | Path, overrides: dict[str, Any] | None = None,
                      progress: Progress | None = None) -> dict[str, Any]:
    """Continue the run recorded in ``trajectory`` with the same preset, model and settings.

    The file may come from someone else, so what it says about where the API key goes, what fetch
    and search may reach, the sandbox's network and environment, and which repository to edit in
    place is used only when ``overrides`` (the command line) repeats it (``_unconfirmed``); its
    setup and test commands run only in an isolated sandbox."""
    from agentkit.trajectory import Trajectory

    path = Path(trajectory)
    if not path.exists():
        raise ConfigError(f"{trajectory}: no such trajectory file; pass the trajectory.jsonl of a run")
    traj = Trajectory.load(path, strict=True)  # a damaged file is a one-line error
    saved = traj.run.get("options")
    if not isinstance(saved, dict):
        raise ConfigError(f"{trajectory} was not written by `agentkit code`/`research`; "
                          "resume it from Python with Agent.resume()")
    given = {k: v for k, v in (overrides or {}).items() if v is not None and v != []}
    data = {**saved, **given, "out": str(path.parent)}
    if data.get("max_cost") == "none":  # --max-cost none lifts the run's cap, its default too
        data.update(max_cost=None, default_max_cost=None)
    try:
        opts = RunOptions.model_validate(data)
    except ValidationError as e:
        where, msg = first_error(e, "options")
        raise ConfigError(f"{trajectory}: the run's option {where!r} is not valid: {msg}") from None
    need = _unconfirmed(opts, set(given), path)
    if need:
        raise ConfigError(f"{trajectory} may come from someone else, so resume takes some of its settings only "
                          f"from the command line: repeat {'; '.join(need)} to use them")
    model, prep = await _model_and_prep(opts, resume=True)
    prep.test_cmd_given = "test_cmd" in given
    prep.setup_cmd_given = False
    return await _execute(prep, model, progress, resume_from=path)


async def _execute(prep: _Prepared, model: Any, progress: Progress | None, resume_from: Path | None) -> dict[str, Any]:
    finished = await execute(prep, model, progress, resume_from)
    if finished.user_error is not None:
        raise finished.user_error
    return finished.result


class Finished(BaseModel):
    """What ``execute`` leaves: the ``result.json`` content (plus ``out``), the agent's own
    ``RunResult`` and typed error (what the library returns and raises), and the ``ConfigError``
    the CLI reports instead for a key, credit or model-name mistake."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    result: dict[str, Any]
    run: Any = None  # agentkit.agent.RunResult, or None when the run never started
    error: Any = None  # the AgentkitError that ended a failed run
    user_error: ConfigError | None = None


async def execute(prep: _Prepared, model: Any, progress: Progress | None, resume_from: Path | None, *,
                  close_model: bool = True, limits: Any = None) -> Finished:
    """Run a prepared task into its folder: sandbox, setup, agent, tests, outputs. ``close_model``:
    False for a model the caller lent (``run_code(model=...)``), which stays theirs to close;
    ``limits``: the caller's ``Limits`` instead of the options' ``max_steps``/``max_cost``."""
    opts, preset, out = prep.opts, prep.preset, prep.out
    progress = progress or Progress(opts.progress)
    sandbox = None
    started = time.monotonic()
    end: Any = None
    run: Any = None  # the AgentRun
    test: dict[str, Any] | None = None
    interrupted: BaseException | None = None
    user_error: ConfigError | None = None
    try:
        progress.note(limits_line(opts, model))
        if prep.workdir is not None:
            sandbox = await open_sandbox(opts, prep.workdir)
            if opts.setup_cmd and _may_setup(prep, sandbox):
                await _run_setup(opts, sandbox, progress)
                if resume_from is None:  # what setup wrote (build files, egg-info) is not the agent's work
                    await _baseline_after_setup(sandbox, prep)
        run_info = {"options": recorded_options(opts)}
        agent = preset.build_agent(progress.watch(model), sandbox=sandbox, options=tool_options(opts),
                                   limits=limits if limits is not None else build_limits(opts),
                                   trajectory=out / TRAJECTORY, run_info=run_info)
        events = run = agent.iter_resume(resume_from) if resume_from else agent.iter(opts.task)
        progress.start()
        try:
            async for event in events:
                progress.update(event)
                if getattr(event, "kind", None) == "end":
                    end = event
        finally:
            progress.close()
        try:
            _raise_user_error(agent.result, opts)
        except ConfigError as e:  # still a complete run folder (result.json says why), then the one-line error
            user_error = e
        ran = user_error is None and agent.result is not None and agent.result.steps > 0
        test = await _run_tests(opts, sandbox, progress) if ran and _may_test(prep, sandbox) else None
        if _works_on_own_copy(opts, sandbox) and prep.workdir is not None:
            await _bring_back(sandbox, prep)
    except (asyncio.CancelledError, KeyboardInterrupt) as e:  # Ctrl-C: the agent logged "cancelled"
        interrupted = e
    finally:
        if sandbox is not None:
            await sandbox.close()
        if close_model:
            await model.aclose()
    if interrupted is not None:
        if (out / TRAJECTORY).exists():  # still leave result.json and the patch so far
            _write_outputs(prep, end, test, time.monotonic() - started, getattr(run, "result", None), model)
        raise interrupted
    result = _write_outputs(prep, end, test, time.monotonic() - started, getattr(run, "result", None), model)
    return Finished(result=result, run=getattr(run, "result", None), error=getattr(run, "error", None),
                    user_error=user_error)


def recorded_options(opts: RunOptions) -> dict[str, Any]:
    """The options as the trajectory stores them: secret-looking ``env`` values and key shapes masked."""
    from agentkit.redact import mask_env, redact

    data = opts.model_dump(mode="json", exclude={"progress"})
    data["env"] = mask_env(opts.env)
    if opts.setup_cmd:
        data["setup_cmd"] = redact(opts.setup_cmd)
    return data


def _may_setup(prep: _Prepared, sandbox: Any) -> bool:
    """A trajectory's own setup command runs only in an isolated sandbox, as its test command does."""
    if prep.setup_cmd_given or getattr(sandbox, "isolated", False):
        return True
    print("agentkit: note: the trajectory's setup command is not run outside an isolated sandbox",
          file=sys.stderr)
    return False


async def _run_setup(opts: RunOptions, sandbox: Any, progress: Progress) -> None:
    """Run ``--setup-cmd`` once from the workspace root; its failure is a ConfigError naming the command
    with the tail of its output."""
    from agentkit.redact import env_secrets, redact

    progress.note(f"setup: {redact(opts.setup_cmd or '')}")
    res = await sandbox.run(f"(cd {shlex.quote(sandbox.workspace)} && {opts.setup_cmd})", timeout=SETUP_TIMEOUT)
    if res.exit_code == 0 and not res.timed_out:
        return
    why = f"timed out after {SETUP_TIMEOUT:g} s" if res.timed_out else f"exited with {res.exit_code}"
    lines = (res.output or "").rstrip().splitlines()
    tail = "\n".join("  " + line for line in lines[-SETUP_TAIL_LINES:]) or "  (no output)"
    raise ConfigError(f"setup_cmd={redact(opts.setup_cmd or '')!r} {why}; the last lines of its output:\n"
                      f"{redact(tail, env_secrets(opts.env))}")


async def _baseline_after_setup(sandbox: Any, prep: _Prepared) -> None:
    """Move the patch's baseline past ``--setup-cmd``: the files it wrote or changed (an egg-info, build
    outputs, a generated config) are then not in the final patch, which holds only the agent's edits.
    A container's setup ran on its own copy, which is brought back first."""
    if prep.baseline is None:
        return
    if _works_on_own_copy(prep.opts, sandbox) and prep.workdir is not None:
        await _bring_back(sandbox, prep)
    prep.baseline.advance("after --setup-cmd")


def _works_on_own_copy(opts: RunOptions, sandbox: Any) -> bool:
    """Only a container works on its own copy of the workspace; a local sandbox edits it directly,
    so there is nothing to bring back (copying it would only cost time on big repositories)."""
    return sandbox is not None and opts.sandbox == "docker" and hasattr(sandbox, "copy_out")


async def _bring_back(sandbox: Any, prep: _Prepared) -> None:
    """A container worked on its own copy: bring its workspace back into the run's working copy."""
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="agentkit-copyout-"))
    try:
        await sandbox.copy_out(str(tmp))
        sync_tree(tmp, prep.workdir, prep.baseline)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _raise_user_error(result: Any, opts: RunOptions) -> None:
    """A run that failed on its first model call because of the key, the credits or the model name is
    a mistake the user fixes (exit 2), not a failed run. Decided by the error's type and status."""
    if result is None or result.status != "error" or result.steps > 1 or not result.error_type:
        return
    error = result.error or ""
    if result.error_type in ("AuthError", "PaymentRequired", "ConfigError"):  # the type goes on, for batch's ledger
        raise ConfigError(error, error_type=result.error_type, error_status=result.error_status)
    if result.error_type == "BadRequest" and _is_unknown_model(result.error_status, error):
        raise ConfigError(f"unknown model {opts.model or DEFAULT_MODEL!r} for this provider: {error} "
                          "— run `agentkit models` for known names or pass --model",
                          error_type="BadRequest", error_status=result.error_status)


def _is_unknown_model(status: int | None, error: str) -> bool:
    """404 from the endpoint, or a 400 whose message names the model as invalid (OpenRouter's way)."""
    text = error.lower()
    return status == 404 or ("model" in text and ("not a valid model" in text or "unknown model" in text
                                                   or "not found" in text or "does not exist" in text))


def _may_test(prep: _Prepared, sandbox: Any) -> bool:
    """A test command from a trajectory file runs only where the model's own commands run: in an
    isolated sandbox (bwrap or Docker); outside one it needs ``--test-cmd`` on the command line."""
    if not prep.opts.test_cmd or sandbox is None:
        return False
    if prep.test_cmd_given or getattr(sandbox, "isolated", False):
        return True
    print("agentkit: note: the trajectory's test command is not run outside an isolated sandbox; "
          "repeat --test-cmd to run it", file=sys.stderr, flush=True)
    return False


async def _run_tests(opts: RunOptions, sandbox: Any, progress: Progress) -> dict[str, Any]:
    progress.note(f"running tests: {opts.test_cmd}")
    # from the workspace root, in a subshell: the agent may have left the session elsewhere
    res = await sandbox.run(f"(cd {shlex.quote(sandbox.workspace)} && {opts.test_cmd})", timeout=opts.test_timeout)
    from agentkit.redact import env_secrets, redact

    output = res.output if len(res.output) <= TEST_OUTPUT_CHARS else "…" + res.output[-TEST_OUTPUT_CHARS:]
    output = redact(output, env_secrets(opts.env))  # result.json: an --env secret the tests print is masked
    return {"cmd": opts.test_cmd, "exit_code": res.exit_code, "passed": res.exit_code == 0,
            "timed_out": res.timed_out, "output": output}


def error_type(run: Any, error: str | None) -> str | None:
    """The error type ``result.json`` records for a run that ended ``error``: the agentkit error that
    ended it (``AuthError``, ``RateLimited``, ``BadRequest``, ...), ``InternalError`` for a bug, None
    for an end the model caused (malformed turns in a row)."""
    kind = getattr(run, "error_type", None)
    if kind:
        return str(kind)
    return "InternalError" if (error or "").startswith("internal error") else None


def _write_outputs(prep: _Prepared, end: Any, test: dict[str, Any] | None, elapsed: float, run: Any = None,
                   model: Any = None) -> dict[str, Any]:
    """``run``: the agent's RunResult (its error type); ``model``: the model this session ran with
    (a resumed run may have changed it since the trajectory's header was written)."""
    from agentkit.trajectory import Trajectory

    opts, out = prep.opts, prep.out
    traj = Trajectory.load(out / TRAJECTORY)
    usage = traj.usage
    status = traj.status if traj.end else (getattr(end, "status", None) or "error")
    error = getattr(end, "error", None)
    result: dict[str, Any] = {
        "id": opts.run_id or out.name, "preset": prep.preset.name, "status": status,
        "answer": traj.answer, "error": error,
        "error_type": error_type(run, error) if status == "error" else None,
        "error_status": getattr(run, "error_status", None) if status == "error" else None,
        "steps": traj.steps,
        "tokens": {"prompt": usage.prompt, "completion": usage.completion, "reasoning": usage.reasoning,
                   "cached": usage.cached, "total": usage.total},
        "cost_usd": traj.cost_usd,
        # share of the prompt tokens the provider served from its cache (billed at the hit price)
        "cache_hit_share": round(usage.cached / usage.prompt, 4) if usage.prompt else None,
        "model": getattr(model, "name", None) or (traj.run or {}).get("model"),
        "provider": getattr(model, "provider", None) or (traj.run or {}).get("provider"),
        "isolation": ((traj.run or {}).get("sandbox") or {}).get("isolation"),
        "test": test, "elapsed_s": round(elapsed, 3),
        "files": {"trajectory": TRAJECTORY},
    }
    if prep.baseline is not None:
        try:
            patch = prep.baseline.diff()
        except SandboxError as e:  # the run's record stays complete without its patch
            result["patch_error"] = str(e)
        else:
            (out / PATCH).write_text(patch, encoding="utf-8")
            result["files"]["patch"] = PATCH
            result["changed_files"] = re.findall(r"^diff --git a/(\S+)", patch, flags=re.M)
            if prep.baseline.left_out:  # nested repositories without a commit: git cannot hold them
                result["patch_left_out"] = prep.baseline.left_out
    if prep.preset.name == "research":
        (out / ANSWER).write_text(answer_markdown(traj.answer or "", traj.sources), encoding="utf-8")
        result["files"]["answer"] = ANSWER
        result["sources"] = traj.sources
    if opts.html:
        html = _html(out / TRAJECTORY, result)  # the viewer shows the test result and the patch
        if html is not None:
            (out / HTML).write_text(html, encoding="utf-8")
            result["files"]["html"] = HTML
    (out / RESULT).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if (prep.baseline is not None and result["status"] == "done" and not opts.in_place and not opts.keep_workspace
            and prep.workdir == out / WORKSPACE):  # the patch holds the work; an unfinished run keeps it to resume
        remove_workspace(out, (WORKSPACE, BASELINE))
    result["out"] = str(out)
    return result


def _html(path: Path, result: dict[str, Any] | None = None) -> str | None:
    try:
        from agentkit.render.html import render_html
    except ImportError:
        return None
    return render_html(path, result)


def answer_markdown(answer: str, sources: Sequence[Source | dict[str, Any]]) -> str:
    """The answer plus a numbered list of the sources it cites (all sources when it cites none).
    ``sources``: ``RunResult.sources``, or the dicts of a trajectory or ``result.json``."""
    cited = {int(n) for n in re.findall(r"\[citation:(\d+)\]", answer)}
    table = [s if isinstance(s, Source) else Source.model_validate(s) for s in sources]
    listed = [s for s in table if not cited or s.n in cited]
    text = answer.rstrip() + "\n"
    if listed:
        text += "\n## Sources\n\n"
        for s in sorted(listed, key=lambda s: s.n):
            text += f"{s.n}. [{s.title or s.url}]({s.url})\n"
    return text


def exit_code(result: dict[str, Any]) -> int:
    """0 when the run finished (and its tests passed, if any), else 1."""
    test = result.get("test")
    ok = result.get("status") == "done" and (test is None or bool(test.get("passed")))
    return 0 if ok else 1
