"""``agentkit eval swebench``: SWE-bench-format instances run by the code agent, each inside its own
environment image, on the batch machinery (workers, resume, the global cost budget, per-task
folders, the ledger).

Each instance gets a fresh container of its image with the repository at ``/testbed`` at
``base_commit``, as the official harness builds them; the agent works on that folder as it is
(nothing is copied in), and the patch is what ``git diff`` shows there against ``base_commit``
once the agent stops. ``OUT/preds.jsonl`` gets one line per finished instance in the harness's
prediction format, as each finishes. With ``evaluate``, a second fresh container applies the model
patch and ``test_patch``, runs the tests and marks the instance resolved when every test of
FAIL_TO_PASS and PASS_TO_PASS passes; ``OUT/report.json`` sums it up.

An instance cut off mid-run (Ctrl-C, a crash) starts again from scratch on the next run of the same
command: its container, where the work was, is gone.

Why one module over 450 lines: reading instances, running them, taking the patch and grading
are one pipeline whose steps pass containers and instance records to each other.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
import shlex
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentkit.app.records import jsonl_lines, validated
from agentkit.errors import ConfigError, SandboxError

DEFAULT_IMAGE_TEMPLATE = "swebench/sweb.eval.x86_64.{docker_id}:latest"
WORKDIR = "/testbed"
PREDS, REPORT = "preds.jsonl", "report.json"
EVAL_DIR = "eval"
Pull = Literal["missing", "never", "always"]

# What the agent is asked; the issue text is the instance's problem_statement.
TASK_TEMPLATE = """\
The repository {repo} is checked out at {workdir} (your current directory). Resolve the issue below by
editing the source code, so that the issue is fixed; do not modify the existing tests. You may write
and run scripts to reproduce the issue and to check your fix. When you are done, submit.

<issue>
{problem_statement}
</issue>
"""


class Instance(BaseModel):
    """One SWE-bench instance, as the Hugging Face datasets publish them (plus ``test_cmd``)."""

    model_config = ConfigDict(extra="allow")

    instance_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    repo: str = ""
    base_commit: str = ""
    problem_statement: str = Field(min_length=1)
    hints_text: str = ""
    test_patch: str = ""
    FAIL_TO_PASS: list[str] = Field(default_factory=list)
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    version: str = ""
    environment_setup_commit: str = ""
    test_cmd: str | None = None  # ours: run in /testbed after test_patch, for private benchmarks

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, v: Any) -> Any:
        if isinstance(v, str):  # the datasets store the lists JSON-encoded
            try:
                return json.loads(v) if v.strip() else []
            except ValueError:
                raise ValueError("must be a JSON-encoded list of test names") from None
        return [] if v is None else v

    @field_validator("version", "hints_text", "repo", "base_commit", "environment_setup_commit", "test_patch",
                     mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return "" if v is None else str(v)


# -- instances ---------------------------------------------------------------------------------------

def load_instances(path: str | Path) -> list[Instance]:
    """Read a JSON list, a JSONL file or (with pyarrow installed) a parquet file of instances;
    a bad record is a one-line ``ConfigError`` naming it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{path}: no such file; pass a SWE-bench instances file (.json, .jsonl or .parquet)")
    if p.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(f"{path}: reading parquet needs pyarrow (pip install pyarrow), "
                              "or convert the file to JSONL") from None
        rows: list[Any] = pq.read_table(p).to_pylist()
        where = [f"{path}: row {i}" for i in range(1, len(rows) + 1)]
    else:
        text = p.read_text(encoding="utf-8")
        if p.suffix == ".json" or text.lstrip().startswith("["):
            try:
                data = json.loads(text)
            except ValueError as e:
                raise ConfigError(f"{path}: not valid JSON ({e})") from None
            rows = data if isinstance(data, list) else [data]
            where = [f"{path}: item {i}" for i in range(1, len(rows) + 1)]
        else:
            rows, where = [], []
            for at, line in jsonl_lines(path, text):
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise ConfigError(f"{at}: not valid JSON ({e})") from None
                where.append(at)
    return [inst for _, inst in validated(zip(where, rows), Instance, "instance_id", field="record",
                                          duplicate="instance_id")]


def parse_slice(text: str) -> slice:
    """``"A:B"`` (either side may be empty) as a slice; a ``ValueError`` that says what is wrong."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        a, b = (int(x) if x.strip() else None for x in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not A:B, e.g. 0:10") from None
    return slice(a, b)


def select(instances: list[Instance], *, filter: str | None = None, slice_: str | slice | None = None,
           shuffle: bool = False, seed: int = 42) -> list[Instance]:
    """The instances to run, picked as mini-swe-agent does: shuffled (by ``seed``, from the order
    of the ids) first, then kept by ``filter`` (a regex searched in the id), then sliced."""
    chosen = list(instances)
    if shuffle:
        chosen.sort(key=lambda i: i.instance_id)
        random.Random(seed).shuffle(chosen)
    if filter:
        try:
            rx = re.compile(filter)
        except re.error as e:
            raise ConfigError(f"filter={filter!r}: not a regular expression ({e})") from None
        chosen = [i for i in chosen if rx.search(i.instance_id)]
    if slice_ is not None:
        chosen = chosen[parse_slice(slice_) if isinstance(slice_, str) else slice_]
    return chosen


def docker_id(instance_id: str) -> str:
    """The id as the official images spell it: ``__`` written as ``_1776_``, lower case."""
    return instance_id.replace("__", "_1776_").lower()


def image_name(inst: Instance, template: str | None = None) -> str:
    """The instance's image: ``template`` (``{instance_id}``, ``{docker_id}``) or the official name."""
    try:
        return (template or DEFAULT_IMAGE_TEMPLATE).format(instance_id=inst.instance_id,
                                                           docker_id=docker_id(inst.instance_id))
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(f"image_template={template!r}: use the fields {{instance_id}} and {{docker_id}} "
                          f"({type(e).__name__}: {e})") from None


# -- images ------------------------------------------------------------------------------------------

def ensure_image(image: str, pull: Pull = "missing", *, timeout: float = 1800.0) -> None:
    """Make ``image`` present as ``pull`` says, or raise ``SandboxError`` with what to do.

    ``never`` uses only local images; ``missing`` pulls one that is not here; ``always`` pulls
    every time. A pull that fails (no registry, no such image, no network) is an error at once;
    a stalled pull is given up after ``timeout`` seconds of no progress (the engine's read timeout)."""
    from docker.errors import DockerException, ImageNotFound

    from agentkit.sandboxes.docker import _client

    client = _client(timeout=int(timeout))
    try:
        if pull != "always":
            try:
                client.images.get(image)
                return
            except ImageNotFound:
                if pull == "never":
                    raise SandboxError(f"image {image} is not present and --pull never was given: build or "
                                       "pull it first (or point --image-template at an image you have)") from None
        repo, tag = _split_tag(image)
        try:
            client.images.pull(repo, tag=tag)
        except (DockerException, OSError) as e:
            raise SandboxError(f"image {image} could not be pulled ({_short(e)}); pull or build it yourself, "
                               "or point --image-template at an image you have") from None
    finally:
        client.close()


def _split_tag(image: str) -> tuple[str, str]:
    name, _, digest = image.partition("@")
    if digest:
        return name, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


def _short(e: BaseException) -> str:
    text = str(getattr(e, "explanation", None) or e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


# -- one instance --------------------------------------------------------------------------------------

class SweOptions(BaseModel):
    """How instances run, besides the model and limits (which come as the batch's RunOptions)."""

    image_template: str | None = None
    pull: Pull = "missing"
    evaluate: bool = False
    test_timeout: float = 1800.0
    model_name: str | None = None  # model_name_or_path in preds.jsonl (default: the model)


async def _open(image: str, network: bool) -> Any:
    from agentkit.sandboxes.docker import DockerSandbox

    # No host workspace: the image's own /testbed is the workspace, used as it is. SWE-bench images
    # have no ordinary user, so commands run as the image's user (root, with every capability but
    # KILL dropped, like every sandbox container).
    sandbox = DockerSandbox(image=image, workdir=WORKDIR, network=network)
    await sandbox.start()
    return sandbox


def _git_base(base_commit: str) -> str:
    """A shell word for the commit to diff against: base_commit when the repo has it, else HEAD."""
    if not base_commit:
        return "HEAD"
    q = shlex.quote(base_commit)
    return f"$(git rev-parse --verify -q {q}^{{commit}} >/dev/null && echo {q} || echo HEAD)"


async def container_patch(sandbox: Any, base_commit: str) -> str:
    """What the agent changed in /testbed, as ``git diff --binary`` against ``base_commit``; new
    files included (git add -A), bytecode left out. Read back as a file, so warnings on stderr
    and the sandbox's output cap cannot touch it."""
    script = (f"cd {WORKDIR} && git -c core.hooksPath=/dev/null add -A -- . ':(exclude)*.pyc' "
              f"':(exclude)*__pycache__*' >/dev/null 2>&1; "
              f"git -c core.hooksPath=/dev/null diff --cached --binary {_git_base(base_commit)} "
              "> /tmp/agentkit-model.patch")
    await asyncio.to_thread(sandbox.exec_simple, ["bash", "-c", script], sandbox.user)
    return (await asyncio.to_thread(_read_container_file, sandbox, "/tmp/agentkit-model.patch")).decode(
        "utf-8", errors="replace")


def _read_container_file(sandbox: Any, path: str) -> bytes:
    stream, _ = sandbox.api.get_archive(sandbox.container_id, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r:") as tar:
        member = tar.next()
        f = tar.extractfile(member) if member is not None else None
        return f.read() if f is not None else b""


async def solve(inst: Instance, opts: Any, swe: SweOptions) -> dict[str, Any]:
    """Run the code agent on one instance into ``opts.out``; returns its result (also result.json)."""
    from agentkit.app.runner import PATCH, RESULT, TRAJECTORY, build_limits, build_model, tool_options
    from agentkit.presets import get_preset
    from agentkit.trajectory import Trajectory

    out = Path(opts.out).resolve()
    if out.exists():  # an attempt cut off earlier: its container is gone, so it starts again
        shutil.rmtree(out)
    out.mkdir(parents=True)
    image = image_name(inst, swe.image_template)
    started = time.monotonic()
    await asyncio.to_thread(ensure_image, image, swe.pull)
    preset = get_preset("code")
    if opts.thinking is not None:
        preset = preset.model_copy(update={"thinking": opts.thinking})
    if opts.request_timeout is not None:
        from agentkit.models.base import ModelSettings

        preset = preset.model_copy(update={"settings": preset.settings.merged(
            ModelSettings(request_timeout=opts.request_timeout))})
    model = build_model(opts)
    sandbox = None
    patch = ""
    try:
        sandbox = await _open(image, opts.network)
        run_info = {"options": opts.model_dump(mode="json", exclude={"progress"}),
                    "swebench": {"instance_id": inst.instance_id, "image": image, "base_commit": inst.base_commit}}
        agent = preset.build_agent(model, sandbox=sandbox, options=tool_options(opts), limits=build_limits(opts),
                                   trajectory=out / TRAJECTORY, run_info=run_info)
        task = TASK_TEMPLATE.format(repo=inst.repo or "under test", workdir=WORKDIR,
                                    problem_statement=inst.problem_statement.strip())
        async for _ in agent.iter(task):
            pass
        patch = await container_patch(sandbox, inst.base_commit)
    finally:
        if sandbox is not None:
            await sandbox.close()
        await model.aclose()
    (out / PATCH).write_text(patch, encoding="utf-8")
    traj = Trajectory.load(out / TRAJECTORY)
    usage = traj.usage
    result: dict[str, Any] = {
        "id": inst.instance_id, "instance_id": inst.instance_id, "preset": "code", "image": image,
        "status": traj.status if traj.end else "error",
        "error": (traj.end or {}).get("error"), "steps": traj.steps,
        "tokens": {"prompt": usage.prompt, "completion": usage.completion, "total": usage.total},
        "cost_usd": traj.cost_usd or 0.0, "model": (traj.run or {}).get("model"),
        "changed_files": re.findall(r"^diff --git a/(\S+)", patch, flags=re.M),
        "patch_bytes": len(patch.encode()), "test": None, "elapsed_s": round(time.monotonic() - started, 3),
        "files": {"trajectory": TRAJECTORY, "patch": PATCH},
    }
    _write_html(out)
    if swe.evaluate:
        result["eval"] = await evaluate_instance(inst, patch, image, out / EVAL_DIR, timeout=swe.test_timeout)
        result["test"] = {"passed": result["eval"].get("resolved") is True} if result["eval"].get("ran") else None
    (out / RESULT).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {**result, "out": str(out)}


def _write_html(out: Path) -> None:
    try:
        from agentkit.render.html import render_html
    except ImportError:
        return
    from agentkit.app.runner import HTML, TRAJECTORY

    html = render_html(out / TRAJECTORY)
    if html is not None:
        (out / HTML).write_text(html, encoding="utf-8")


# -- evaluation -----------------------------------------------------------------------------------------

_APPLY = ("(git apply --binary --verbose {p} || git apply --binary --verbose --reject {p} "
          "|| patch --batch --fuzz=5 -p1 -i {p})")


def patch_files(test_patch: str) -> list[str]:
    """The files a test patch touches (to reset them to base_commit before applying it)."""
    return sorted(set(re.findall(r"^diff --git a/\S+ b/(\S+)", test_patch, flags=re.M)))


async def evaluate_instance(inst: Instance, patch: str, image: str, folder: Path, *,
                            timeout: float = 1800.0) -> dict[str, Any]:
    """Apply ``patch`` and the instance's test_patch in a fresh container of ``image``, run its tests and
    grade them. The log goes to ``folder/test_output.txt``; returns the instance's eval status."""
    folder.mkdir(parents=True, exist_ok=True)
    if not inst.test_cmd:
        return {"ran": False, "resolved": None,
                "reason": "no test_cmd in the instance: grade preds.jsonl with the official harness "
                          "(python -m swebench.harness.run_evaluation --predictions_path preds.jsonl)"}
    if not patch.strip():
        return {"ran": False, "resolved": False, "reason": "empty patch"}
    sandbox = None
    try:
        sandbox = await _open(image, network=False)
        files = {"model.patch": patch.encode(), "test.patch": inst.test_patch.encode()}
        d = "/tmp/agentkit-eval"
        reset = " ".join(shlex.quote(f) for f in patch_files(inst.test_patch))
        script = [f"cd {WORKDIR} || exit 1",
                  f"{_APPLY.format(p=d + '/model.patch')} > {d}/apply.log 2>&1 || {{ echo APPLY_FAILED; exit 0; }}"]
        if inst.test_patch.strip():
            if reset:
                script.append(f"git checkout -q {_git_base(inst.base_commit)} -- {reset} 2>/dev/null || true")
            script.append(f"git apply --binary {d}/test.patch >> {d}/apply.log 2>&1 "
                          "|| { echo TEST_PATCH_FAILED; exit 0; }")
        script.append(f"( {inst.test_cmd}\n) > {d}/test.log 2>&1; echo EXIT=$?")
        files["eval.sh"] = ("\n".join(script) + "\n").encode()
        await asyncio.to_thread(sandbox.put_files, "/tmp", {f"agentkit-eval/{k}": v for k, v in files.items()})
        res = await sandbox.run(f"bash {d}/eval.sh", timeout=timeout)
        log = await asyncio.to_thread(_read_or_empty, sandbox, f"{d}/test.log")
        apply_log = await asyncio.to_thread(_read_or_empty, sandbox, f"{d}/apply.log")
    except (SandboxError, OSError) as e:
        return {"ran": False, "resolved": None, "reason": f"evaluation failed: {e}"}
    finally:
        if sandbox is not None:
            await sandbox.close()
    (folder / "test_output.txt").write_text(log, encoding="utf-8")
    (folder / "apply.log").write_text(apply_log, encoding="utf-8")
    if "APPLY_FAILED" in res.output:
        return {"ran": False, "resolved": False, "reason": "the patch does not apply (eval/apply.log)"}
    if "TEST_PATCH_FAILED" in res.output:
        return {"ran": False, "resolved": None, "reason": "test_patch does not apply over the patch (eval/apply.log)"}
    m = re.search(r"EXIT=(\d+)", res.output)
    exit_code = int(m.group(1)) if m else None
    grade = grade_log(log, inst.FAIL_TO_PASS, inst.PASS_TO_PASS, exit_code)
    return {"ran": True, "exit_code": exit_code, "timed_out": res.timed_out, **grade,
            "log": f"{EVAL_DIR}/test_output.txt"}


def _read_or_empty(sandbox: Any, path: str) -> str:
    try:
        return _read_container_file(sandbox, path).decode("utf-8", errors="replace")
    except Exception:  # the file was never written (the step before it failed)
        return ""


_PASS = {"PASSED", "XFAIL", "ok", "expected failure"}
_RX_RA = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(\S+)")  # pytest -rA summary
_RX_V = re.compile(r"^(\S+::\S+)\s+(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\b")  # pytest -v
_RX_UNIT = re.compile(r"^(\w+) \(([\w.]+)\)(?:\n.*?)?\s\.\.\.\s(ok|FAIL|ERROR|skipped.*|expected failure"
                      r"|unexpected success)\s*$")  # unittest / django -v 2


def parse_test_log(log: str) -> dict[str, str]:
    """Each test's status in a pytest (``-rA`` or ``-v``) or unittest (``-v``) log. unittest names
    appear both as printed (``test_x (mod.Class.test_x)``) and as SWE-bench lists django's
    (``test_x (mod.Class)``)."""
    status: dict[str, str] = {}
    for line in log.splitlines():
        line = line.rstrip()
        m = _RX_RA.match(line)
        if m:
            status[m.group(2)] = m.group(1)
            continue
        m = _RX_V.match(line)
        if m:
            status[m.group(1)] = m.group(2)
            continue
        m = _RX_UNIT.match(line)
        if m:
            name, where, word = m.groups()
            word = "skipped" if word.startswith("skipped") else word
            status[f"{name} ({where})"] = word
            if where.endswith("." + name):
                status[f"{name} ({where[: -len(name) - 1]})"] = word
    return status


def grade_log(log: str, fail_to_pass: list[str], pass_to_pass: list[str],
              exit_code: int | None) -> dict[str, Any]:
    """Resolved when every FAIL_TO_PASS and PASS_TO_PASS test passed (a test missing from the log did
    not); with both lists empty, when the test command exited 0."""
    status = parse_test_log(log)

    def passed(names: list[str]) -> tuple[list[str], list[str]]:
        ok = [n for n in names if status.get(n) in _PASS]
        return ok, [n for n in names if n not in ok]

    f2p_ok, f2p_bad = passed(fail_to_pass)
    p2p_ok, p2p_bad = passed(pass_to_pass)
    if not fail_to_pass and not pass_to_pass:
        resolved = exit_code == 0
    else:
        resolved = not f2p_bad and not p2p_bad
    return {"resolved": resolved,
            "tests": {"FAIL_TO_PASS": {"success": f2p_ok, "failure": f2p_bad},
                      "PASS_TO_PASS": {"success": p2p_ok, "failure": p2p_bad}}}


# -- the whole run ---------------------------------------------------------------------------------------

def prediction(instance_id: str, model_name: str, patch: str) -> dict[str, str]:
    return {"instance_id": instance_id, "model_name_or_path": model_name, "model_patch": patch}


def _model_name(opts: Any, swe: SweOptions) -> str:
    return swe.model_name or opts.model or "agentkit"


def write_preds(out: Path, ids: list[str], model_name: str) -> Path:
    """Rewrite OUT/preds.jsonl from every finished instance's patch (the ledger's ids, in ``ids``' order)."""
    from agentkit.app.batch import read_results

    done = {r["id"] for r in read_results(out)}
    lines = []
    for iid in ids:
        if iid in done:
            patch_file = out / "tasks" / iid / "patch.diff"
            patch = patch_file.read_text(encoding="utf-8") if patch_file.is_file() else ""
            lines.append(json.dumps(prediction(iid, model_name, patch), ensure_ascii=False) + "\n")
    tmp = out / (PREDS + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(out / PREDS)
    return out / PREDS


def build_report(instances: list[Instance], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The summary (``resolved``, ``total``, ``resolved_ids``, …) with each instance's status, cost,
    tokens and steps; the id lists follow the official harness's report."""
    per: dict[str, Any] = {}
    resolved_ids, unresolved_ids, error_ids, empty_ids, submitted, not_run = [], [], [], [], [], []
    cost, prompt, completion, evaluated = 0.0, 0, 0, 0
    for inst in instances:
        r = results.get(inst.instance_id)
        if r is None:
            not_run.append(inst.instance_id)
            per[inst.instance_id] = {"status": "not_run", "resolved": None}
            continue
        submitted.append(inst.instance_id)
        ev = r.get("eval") or {}
        tokens = r.get("tokens") or {}
        entry = {"status": r.get("status"), "resolved": ev.get("resolved"), "error": r.get("error"),
                 "eval": ev.get("reason") or ("ran" if ev.get("ran") else None),
                 "cost_usd": float(r.get("cost_usd") or 0.0),
                 "tokens": {"prompt": int(tokens.get("prompt") or 0), "completion": int(tokens.get("completion") or 0)},
                 "steps": int(r.get("steps") or 0), "patch_bytes": int(r.get("patch_bytes") or 0)}
        per[inst.instance_id] = entry
        cost += entry["cost_usd"]
        prompt += entry["tokens"]["prompt"]
        completion += entry["tokens"]["completion"]
        if r.get("status") == "error" and not r.get("patch_bytes"):
            error_ids.append(inst.instance_id)
        elif not r.get("patch_bytes"):
            empty_ids.append(inst.instance_id)
        if ev.get("ran") or ev.get("resolved") is not None:
            evaluated += 1
        if ev.get("resolved") is True:
            resolved_ids.append(inst.instance_id)
        elif ev.get("resolved") is False:
            unresolved_ids.append(inst.instance_id)
    total = len(instances)
    return {"total": total, "submitted": len(submitted), "evaluated": evaluated,
            "resolved": len(resolved_ids), "resolved_rate": round(len(resolved_ids) / total, 4) if total else None,
            "resolved_ids": resolved_ids, "unresolved_ids": unresolved_ids, "error_ids": error_ids,
            "empty_patch_ids": empty_ids, "not_run_ids": not_run,
            "cost_usd": round(cost, 6), "tokens": {"prompt": prompt, "completion": completion},
            "instances": per}


def report_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"SWE-bench: {report['resolved']}/{report['total']} resolved", show_header=True)
    for col, just in (("instance", "left"), ("status", "left"), ("resolved", "left"), ("steps", "right"),
                      ("tokens", "right"), ("cost", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for iid, e in report["instances"].items():
        res = {True: "yes", False: "no", None: "-"}[e.get("resolved")]
        note = e.get("error") or (e.get("eval") if e.get("eval") not in (None, "ran") else "")
        tok = e.get("tokens") or {}
        table.add_row(iid, str(e.get("status")) + (f" ({str(note)[:60]})" if note else ""), res,
                      str(e.get("steps", 0)), f"{tok.get('prompt', 0) + tok.get('completion', 0):,}",
                      f"${e.get('cost_usd', 0.0):.4f}")
    table.add_row("total", f"{report['submitted']} ran", f"{report['resolved']}/{report['total']}", "",
                  f"{report['tokens']['prompt'] + report['tokens']['completion']:,}", f"${report['cost_usd']:.4f}")
    return table


async def run_swebench(instances: list[Instance], base: Any, out: str | Path, swe: SweOptions, *,
                       workers: int = 1, max_cost: float | None = None,
                       on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``instances`` with the batch machinery into ``out``; writes preds.jsonl (as instances finish)
    and report.json; returns the report."""
    from agentkit.app.batch import BatchTask, read_results, run_batch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_id = {i.instance_id: i for i in instances}
    ids = [i.instance_id for i in instances]
    model_name = _model_name(base, swe)
    tasks = [BatchTask(id=i.instance_id, preset="code", task=i.problem_statement, test_cmd=i.test_cmd)
             for i in instances]

    async def runner(opts: Any) -> dict[str, Any]:
        return await solve(by_id[opts.run_id], opts, swe)

    def landed(result: dict[str, Any]) -> None:
        write_preds(out, ids, model_name)  # the whole file again: complete and valid after every instance
        if on_result:
            on_result(result)

    await run_batch(tasks, base, out, workers=workers, max_cost=max_cost, on_result=landed, runner=runner)
    write_preds(out, ids, model_name)
    results = {r["id"]: r for r in read_results(out)}
    report = build_report(instances, results)
    (out / REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


__all__ = ["DEFAULT_IMAGE_TEMPLATE", "Instance", "SweOptions", "build_report", "docker_id", "ensure_image",
           "evaluate_instance", "grade_log", "image_name", "load_instances", "parse_test_log", "run_swebench",
           "select", "solve", "write_preds"]
