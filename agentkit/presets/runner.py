"""One run of a preset from start to files on disk; shared by the CLI, batch runs and Ray workers.

The output folder holds everything a run produced: ``trajectory.jsonl``, ``result.json``, the HTML
view, and ``patch.diff`` (code) or ``answer.md`` (research). For code runs the working copy lives in
``workspace/`` inside it, which is what makes ``agentkit resume`` possible.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import re
import shlex
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import ConfigError, SandboxError
from agentkit.presets import get_preset
from agentkit.presets.base import Preset, ToolOptions
from agentkit.presets.workspace import Baseline, check_repo, copy_repo, sync_tree
from agentkit.progress import Progress

DEFAULT_MODEL = "deepseek/deepseek-chat-v3.1"
TRAJECTORY, RESULT, PATCH, HTML, ANSWER = "trajectory.jsonl", "result.json", "patch.diff", "trajectory.html", "answer.md"
WORKSPACE, BASELINE = "workspace", ".baseline.git"
TEST_OUTPUT_CHARS = 4000


class RunOptions(BaseModel):
    """Everything a run needs besides secrets (keys come from the environment), as the CLI gives it."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["code", "research"] = "code"
    task: str = ""
    repo: str | None = None
    in_place: bool = False
    test_cmd: str | None = None
    test_timeout: float = 900.0
    out: str | None = None
    run_id: str | None = None
    model: str | None = None
    provider: str | None = None
    base_url: str | None = None
    thinking: bool | None = None  # None: the preset's mode
    request_timeout: float | None = None  # seconds per model call; None: ModelSettings' default
    sandbox: Literal["local", "docker"] = "local"
    image: str | None = None
    max_steps: int | None = None
    max_cost: float | None = None
    python: bool = False
    search_backend: str | None = None
    max_searches: int | None = None
    fetch_allow: list[str] = Field(default_factory=list)
    confirm: bool = False
    progress: Literal["auto", "live", "plain", "quiet"] = "auto"
    html: bool = True


def slug(text: str, n: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (words[:n].rstrip("-") or "run")


def default_out(task: str, root: str | Path = "runs") -> Path:
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

    model = opts.model or DEFAULT_MODEL
    return make_model(model, provider=opts.provider, base_url=opts.base_url)


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

    kw: dict[str, Any] = {}
    if opts.sandbox == "docker" and opts.image:
        kw["image"] = opts.image
    try:
        sandbox = make_sandbox(opts.sandbox, workspace=str(workspace), **kw)
        await sandbox.start()
    except SandboxError as e:
        if opts.sandbox == "docker":
            raise ConfigError(f"--sandbox docker: {e}; or run with --sandbox local") from None
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


def _prepare(opts: RunOptions, resume: bool = False) -> _Prepared:
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
        raise ConfigError("--image is for the Docker sandbox: add --sandbox docker or drop --image")
    out = Path(opts.out) if opts.out else default_out(opts.task)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    workdir = baseline = None
    if preset.name == "code":
        if not opts.repo:
            raise ConfigError("the code agent needs a repository: pass --repo PATH")
        repo = check_repo(opts.repo)
        if opts.in_place:
            workdir = repo
        elif resume and (out / WORKSPACE).is_dir():
            workdir = out / WORKSPACE
        else:  # a fresh run owns its folder: drop what an earlier, unfinished attempt left there
            for stale in (out / WORKSPACE, out / BASELINE):
                shutil.rmtree(stale, ignore_errors=True)
            workdir = copy_repo(repo, out / WORKSPACE, skip=out)
        baseline = Baseline.take(workdir, out / BASELINE, skip=out)
    elif preset.needs_sandbox:
        workdir = out / WORKSPACE
        workdir.mkdir(exist_ok=True)
    return _Prepared(opts=opts, preset=preset, out=out.resolve(), workdir=workdir, baseline=baseline)


async def run_task(opts: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run one task to the end; returns the ``result.json`` content (also written to the folder)."""
    opts = opts.model_copy(update={"task": read_task(opts.task)})
    model = build_model(opts)  # first: a missing key should fail before any file is written
    try:
        prep = _prepare(opts)
    except BaseException:
        await model.aclose()
        raise
    return await _execute(prep, model, progress, resume_from=None)


async def run_or_resume(opts: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run a task into ``opts.out``, or resume it when an earlier attempt left a trajectory there
    (a batch killed mid-run picks its unfinished tasks up where they stopped)."""
    path = Path(opts.out or "") / TRAJECTORY
    if opts.out and path.is_file():
        from agentkit.trajectory import Trajectory

        saved = (Trajectory.load(path).run or {}).get("options")
        if isinstance(saved, dict):  # display settings are not saved with a run: keep this call's
            return await resume_task(path, {"progress": opts.progress}, progress=progress)
    return await run_task(opts, progress)


async def resume_task(trajectory: str | Path, overrides: dict[str, Any] | None = None,
                      progress: Progress | None = None) -> dict[str, Any]:
    """Continue the run recorded in ``trajectory`` with the same preset, model and settings."""
    from agentkit.trajectory import Trajectory

    path = Path(trajectory)
    if not path.is_file():
        raise ConfigError(f"{trajectory}: no such trajectory file; pass the trajectory.jsonl of a run")
    traj = Trajectory.load(path)
    saved = (traj.run or {}).get("options")
    if not isinstance(saved, dict):
        raise ConfigError(f"{trajectory} was not written by `agentkit code`/`research`; "
                          "resume it from Python with Agent.resume()")
    data = {**saved, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    data["out"] = str(path.parent)
    opts = RunOptions.model_validate(data)
    model = build_model(opts)
    try:
        prep = _prepare(opts, resume=True)
    except BaseException:
        await model.aclose()
        raise
    return await _execute(prep, model, progress, resume_from=path)


async def _execute(prep: _Prepared, model: Any, progress: Progress | None, resume_from: Path | None) -> dict[str, Any]:
    opts, preset, out = prep.opts, prep.preset, prep.out
    progress = progress or Progress(opts.progress)
    sandbox = None
    started = time.monotonic()
    end: Any = None
    test: dict[str, Any] | None = None
    interrupted: BaseException | None = None
    try:
        if prep.workdir is not None:
            sandbox = await open_sandbox(opts, prep.workdir)
        run_info = {"options": opts.model_dump(mode="json", exclude={"progress"})}
        agent = preset.build_agent(model, sandbox=sandbox, options=tool_options(opts), limits=build_limits(opts),
                                   trajectory=out / TRAJECTORY, run_info=run_info)
        events = agent.iter_resume(resume_from) if resume_from else agent.iter(opts.task)
        progress.start()
        try:
            async for event in events:
                progress.update(event)
                if getattr(event, "kind", None) == "end":
                    end = event
        finally:
            progress.close()
        _raise_user_error(agent.result, opts)
        test = await _run_tests(opts, sandbox, progress) if opts.test_cmd and sandbox is not None else None
        if sandbox is not None and hasattr(sandbox, "copy_out") and prep.workdir is not None:
            await _bring_back(sandbox, prep)
    except (asyncio.CancelledError, KeyboardInterrupt) as e:  # Ctrl-C: the agent logged "cancelled"
        interrupted = e
    finally:
        if sandbox is not None:
            await sandbox.close()
        await model.aclose()
    if interrupted is not None:
        if (out / TRAJECTORY).exists():  # still leave result.json and the patch so far
            _write_outputs(prep, end, test, time.monotonic() - started)
        raise interrupted
    return _write_outputs(prep, end, test, time.monotonic() - started)


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
    if result.error_type in ("AuthError", "PaymentRequired", "ConfigError"):
        raise ConfigError(error)
    if result.error_type == "BadRequest" and _is_unknown_model(result.error_status, error):
        raise ConfigError(f"unknown model {opts.model or DEFAULT_MODEL!r} for this provider: {error} "
                          "— run `agentkit models` for known names or pass --model")


def _is_unknown_model(status: int | None, error: str) -> bool:
    """404 from the endpoint, or a 400 whose message names the model as invalid (OpenRouter's way)."""
    text = error.lower()
    return status == 404 or ("model" in text and ("not a valid model" in text or "unknown model" in text
                                                   or "not found" in text or "does not exist" in text))


async def _run_tests(opts: RunOptions, sandbox: Any, progress: Progress) -> dict[str, Any]:
    progress.note(f"running tests: {opts.test_cmd}")
    # from the workspace root, in a subshell: the agent may have left the session elsewhere
    res = await sandbox.run(f"(cd {shlex.quote(sandbox.workspace)} && {opts.test_cmd})", timeout=opts.test_timeout)
    output = res.output if len(res.output) <= TEST_OUTPUT_CHARS else "…" + res.output[-TEST_OUTPUT_CHARS:]
    return {"cmd": opts.test_cmd, "exit_code": res.exit_code, "passed": res.exit_code == 0,
            "timed_out": res.timed_out, "output": output}


def _write_outputs(prep: _Prepared, end: Any, test: dict[str, Any] | None, elapsed: float) -> dict[str, Any]:
    from agentkit.trajectory import Trajectory

    opts, out = prep.opts, prep.out
    traj = Trajectory.load(out / TRAJECTORY)
    usage = traj.usage
    result: dict[str, Any] = {
        "id": opts.run_id or out.name, "preset": prep.preset.name,
        "status": traj.status if traj.end else (getattr(end, "status", None) or "error"),
        "answer": traj.answer, "error": getattr(end, "error", None),
        "steps": traj.steps,
        "tokens": {"prompt": usage.prompt, "completion": usage.completion, "reasoning": usage.reasoning,
                   "cached": usage.cached, "total": usage.total},
        "cost_usd": traj.cost_usd,
        # share of the prompt tokens the provider served from its cache (billed at the hit price)
        "cache_hit_share": round(usage.cached / usage.prompt, 4) if usage.prompt else None,
        "model": (traj.run or {}).get("model"), "provider": (traj.run or {}).get("provider"),
        "test": test, "elapsed_s": round(elapsed, 3),
        "files": {"trajectory": TRAJECTORY},
    }
    if prep.baseline is not None:
        patch = prep.baseline.diff()
        (out / PATCH).write_text(patch, encoding="utf-8")
        result["files"]["patch"] = PATCH
        result["changed_files"] = re.findall(r"^diff --git a/(\S+)", patch, flags=re.M)
    if prep.preset.name == "research":
        (out / ANSWER).write_text(answer_markdown(traj.answer or "", traj.sources), encoding="utf-8")
        result["files"]["answer"] = ANSWER
        result["sources"] = traj.sources
    if opts.html:
        html = _html(out / TRAJECTORY)
        if html is not None:
            (out / HTML).write_text(html, encoding="utf-8")
            result["files"]["html"] = HTML
    (out / RESULT).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    result["out"] = str(out)
    return result


def _html(path: Path) -> str | None:
    try:
        from agentkit.formats.html import render_html
    except ImportError:
        return None
    return render_html(path)


def answer_markdown(answer: str, sources: list[dict[str, Any]]) -> str:
    """The answer plus a numbered list of the sources it cites (all sources when it cites none)."""
    cited = {int(n) for n in re.findall(r"\[citation:(\d+)\]", answer)}
    listed = [s for s in sources if not cited or int(s.get("n", 0)) in cited]
    text = answer.rstrip() + "\n"
    if listed:
        text += "\n## Sources\n\n"
        for s in sorted(listed, key=lambda s: int(s.get("n", 0))):
            title = s.get("title") or s.get("url")
            text += f"{s.get('n')}. [{title}]({s.get('url')})\n"
    return text


def exit_code(result: dict[str, Any]) -> int:
    """0 when the run finished (and its tests passed, if any), else 1."""
    test = result.get("test")
    ok = result.get("status") == "done" and (test is None or bool(test.get("passed")))
    return 0 if ok else 1
