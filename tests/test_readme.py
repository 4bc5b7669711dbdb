"""Every command in README.md is exercised here.

The commands are extracted from the README's ```bash blocks (and the ```python block is run), so a
command added to the README without a way to exercise it fails ``test_every_command_has_a_handler``.
Real-provider commands run against the fake OpenAI-compatible server (``--base-url`` appended, the
README's placeholder key exported), web search uses the fixture backend with pages on 127.0.0.1, and
placeholders such as ``~/src/project`` and ``runs/<run>`` become a copy of the demo repo and a real
finished run. Installing from PyPI needs the network, which tests may not use: the install line runs
its offline parts for real (venv creation, the installed ``agentkit demo``) and checks the rest.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable

import pytest

from agentkit import demo
from agentkit.testing.server import FakeServer, Reply
from tests.fixtures_cli import cli_env, run_cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDER_KEYS = {"OPENROUTER_API_KEY": "sk-or-v1-your-key", "DEEPSEEK_API_KEY": "sk-your-key",
                    "ATLASCLOUD_API_KEY": "your-key"}


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)


def readme_commands() -> list[str]:
    cmds: list[str] = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                cmds.append(line.strip())
    return cmds


COMMANDS = readme_commands()


# ---------------------------------------------------------------------------------------- fake model
FIX_OLD = "    middle = len(ordered) // 2\n    return ordered[middle]\n"
FIX_NEW = ("    middle = len(ordered) // 2\n    if len(ordered) % 2 == 0:\n"
           "        return (ordered[middle - 1] + ordered[middle]) / 2\n    return ordered[middle]\n")
CODE_CALLS = [("bash", {"command": "python3 -m unittest discover -s tests 2>&1 | tail -3"}),
              ("str_replace_editor", {"command": "str_replace", "path": "textstats/stats.py",
                                      "old_str": FIX_OLD, "new_str": FIX_NEW}),
              ("submit", {"summary": "median() now averages the two middle values"})]


def _responder(record: dict[str, Any]) -> Reply:
    """Answers like a model would for whichever agent is asking (code, research, chat, raw)."""
    body = record["json"] or {}
    if record["path"].endswith("/completions") and "prompt" in body:  # raw template mode
        step = body["prompt"].count("<｜tool▁output▁begin｜>")
        name, args = CODE_CALLS[min(step, len(CODE_CALLS) - 1)]
        return Reply(text=("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + name + "<｜tool▁sep｜>"
                           + json.dumps(args) + "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"))
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    step = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    if "submit" in tools:
        name, args = CODE_CALLS[min(step, len(CODE_CALLS) - 1)]
        return Reply(tool_calls=[{"name": name, "arguments": json.dumps(args)}], usage={"cost": 0.001})
    if "search" in tools:
        if step == 0:
            return Reply(reasoning="Search first.", content="",
                         tool_calls=[{"name": "search", "arguments": json.dumps({"questions": "Vellmar tide clock history"})}])
        return Reply(reasoning="Enough.", content="A float in a stilling well moves the hand [citation:1].")
    return Reply(content="Hello there, nice to meet you!")


@pytest.fixture(scope="module")
def server() -> Any:
    srv = FakeServer(responder=_responder).start_in_thread()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with demo.research_site(tmp_path_factory.mktemp("site")) as s:
        yield s


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "demo-run"
    proc = run_cli("demo", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


# ----------------------------------------------------------------------------------- the handlers
class Ctx:
    def __init__(self, tmp: Path, server: FakeServer, site: dict[str, str], run: Path) -> None:
        self.tmp, self.server, self.site, self.run = tmp, server, site, run
        self.repo = tmp / "repo"
        shutil.copytree(demo.REPO, self.repo, ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "issue.md").write_text((demo.REPO / "ISSUE.md").read_text())
        self.env = cli_env(**PLACEHOLDER_KEYS)


def _agentkit(cmd: str, ctx: Ctx) -> None:
    args = shlex.split(cmd)[1:]
    sub = args[0]
    args = [str(ctx.repo) if a in ("agentkit/demo/repo", "~/src/project") or a.endswith("/src/project") else a
            for a in args]
    if sub == "resume":  # a run that stopped at a step limit, so resuming has work to do
        stopped = ctx.tmp / "stopped-run"
        proc = run_cli("code", demo.CODE_TASK, "--repo", str(ctx.repo), "--model", f"replay:{demo.CODE_SCRIPT}",
                       "--max-steps", "2", "--out", str(stopped), "--quiet")
        assert proc.returncode == 1 and json.loads((stopped / "result.json").read_text())["status"] == "limit"
        args = [a.replace("runs/<run>", str(stopped)) for a in args]
    if sub == "view":
        (ctx.run / "trajectory.html").unlink(missing_ok=True)  # view must write it
    args = [a.replace("runs/<run>", str(ctx.run)) for a in args]
    args = ["@" + str(ctx.tmp / "issue.md") if a == "@issue.md" else a for a in args]
    out = ctx.tmp / f"out-{sub}"
    if sub in ("code", "research", "batch", "demo") and "--out" not in args:
        args += ["--out", str(out)]
    elif "--out" in args:
        args[args.index("--out") + 1] = str(out)
    if sub in ("code", "research", "chat", "batch") and "--base-url" not in args:
        args += ["--base-url", ctx.server.base_url]
        if "--provider" not in args:
            args += ["--provider", "openrouter"]  # what the default resolves to without a base URL
    if sub == "research":
        args += ["--search-backend", f"fixture:{ctx.site['search_fixture']}"]
    if "-o" in args:
        args[args.index("-o") + 1] = str(ctx.tmp / args[args.index("-o") + 1])
    if "--provider" in args and args[args.index("--provider") + 1] == "raw":
        args[args.index("--base-url") + 1] = ctx.server.base_url
    n_requests = len(ctx.server.requests)
    proc = run_cli(*args, cwd=ROOT, env=ctx.env)
    assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
    CHECKS[sub](proc, ctx, out, n_requests)
    for key in PLACEHOLDER_KEYS.values():  # no key ever reaches a file
        for path in ctx.tmp.rglob("*.jsonl"):
            assert key not in path.read_text(errors="replace"), path


def _check_code(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "done"
    assert "ordered[middle - 1]" in (out / "patch.diff").read_text()
    assert (out / "trajectory.html").is_file()
    if result.get("test"):
        assert result["test"]["passed"] is True
    assert len(ctx.server.requests) > n  # the fake model was really asked
    shutil.rmtree(out)


def _check_research(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    answer = (out / "answer.md").read_text()
    assert "[citation:1]" in answer and "1. [The Vellmar Tide Clock" in answer
    shutil.rmtree(out)


def _check_chat(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    assert "Hello there, nice to meet you!" in proc.stdout
    assert ctx.server.requests[-1]["headers"].get("authorization") == "Bearer sk-or-v1-your-key"


def _check_batch(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["status"] == "done" for x in lines)


def _check_resume(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    assert "status: done  steps: 6" in proc.stdout
    result = json.loads((ctx.tmp / "stopped-run" / "result.json").read_text())
    assert result["status"] == "done" and "ordered[middle - 1]" in (ctx.tmp / "stopped-run" / "patch.diff").read_text()


def _check_view(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    assert (ctx.run / "trajectory.html").read_text().startswith("<!")


def _check_render(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    if "-o" in proc.args:
        target = Path(proc.args[proc.args.index("-o") + 1])
        assert json.loads(target.read_text().splitlines()[0])["messages"][0]["role"] == "system"
    else:
        assert proc.stdout.startswith("<｜begin▁of▁sentence｜>") and "<｜tool▁calls▁begin｜>" in proc.stdout


def _check_models(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    assert "deepseek/deepseek-chat-v3.1" in proc.stdout


def _check_demo(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    assert "status: done" in proc.stdout
    assert (out / ("answer.md" if "research" in proc.args else "patch.diff")).is_file()


def _check_sandboxes(proc: Any, ctx: Ctx, out: Path, n: int) -> None:
    pass  # exit code 0 is the check: prune found nothing it must keep


CHECKS: dict[str, Callable[..., None]] = {
    "code": _check_code, "research": _check_research, "chat": _check_chat, "batch": _check_batch,
    "resume": _check_resume, "view": _check_view, "render": _check_render, "models": _check_models,
    "demo": _check_demo, "sandboxes": _check_sandboxes}


def _export(cmd: str, ctx: Ctx) -> None:
    name, value = cmd.split(None, 1)[1].split("=", 1)
    assert PLACEHOLDER_KEYS[name] == value  # the README shows placeholders only; tests export them


def _install(cmd: str, ctx: Ctx) -> None:
    parts = [p.strip() for p in cmd.split("&&")]
    assert parts == ["python3 -m venv .venv", ".venv/bin/pip install -U pip", ".venv/bin/pip install -e .",
                     ".venv/bin/agentkit demo"]
    # 1. the venv step, for real
    subprocess.run(["python3", "-m", "venv", str(ctx.tmp / ".venv")], check=True)
    assert (ctx.tmp / ".venv" / "bin" / "pip").is_file()
    # 2-3. `pip install -e .` needs PyPI; check what it installs: the `agentkit` command and the demo data
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["agentkit"] == "agentkit.cli:main"
    data = meta["tool"]["setuptools"]["package-data"]
    assert "agentkit.demo.repo.textstats" in meta["tool"]["setuptools"]["packages"] and "*.html" in \
        data["agentkit.demo.research.pages"]
    # 4. the installed command, as that install leaves it (this checkout's .venv was made the same way)
    exe = Path(sys.executable).parent / "agentkit"
    proc = subprocess.run([str(exe), "demo", "--out", str(ctx.tmp / "install-demo")], cwd=ctx.tmp, env=cli_env(),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((ctx.tmp / "install-demo" / "result.json").read_text())["test"]["passed"] is True


def _scripts_test(cmd: str, ctx: Ctx) -> None:
    # Running the whole suite from inside itself would recurse: check it is the suite's entry point.
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "test")]).returncode == 0
    assert "exec bash scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in (ROOT / "scripts" / "test").read_text()


def _image(cmd: str, ctx: Ctx) -> None:
    from tests.fixtures_sandbox import require_docker

    require_docker()  # both scripts skip work already done, so with the image present this is quick
    proc = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _python_example(cmd: str, ctx: Ctx) -> None:
    script = cmd.split()[1]
    proc = subprocess.run([sys.executable, str(ROOT / script), f"replay:{ROOT / 'examples/replays/library.jsonl'}"],
                          cwd=ctx.tmp, env=cli_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0 and proc.stdout.startswith("done |"), proc.stderr


HANDLERS: list[tuple[str, Callable[[str, Ctx], None]]] = [
    (r"^python3 -m venv \.venv && ", _install),
    (r"^bash scripts/test$", _scripts_test),
    (r"^bash scripts/start-dockerd && bash sandboxes/build-offline-image\.sh$", _image),
    (r"^export [A-Z_]+=\S+$", _export),
    (r"^python examples/\S+\.py$", _python_example),
    (r"^agentkit (?!.*--sandbox docker)(?!sandboxes )(?!index )(?!eval )(?!.*--search-backend local:)", _agentkit),
    (r"^agentkit eval ", lambda cmd, ctx: _eval(cmd, ctx)),
    (r"^agentkit (index |research .*--search-backend local:)", lambda cmd, ctx: _local_documents(cmd, ctx)),
    (r"^agentkit (.*--sandbox docker|sandboxes )", lambda cmd, ctx: _docker_agentkit(cmd, ctx)),
]


def _local_documents(cmd: str, ctx: Ctx) -> None:
    """``agentkit index`` / ``research --search-backend local:DIR`` as written (a replay model, the corpus in
    tests/data/corpus), with the index cache in a temporary XDG_CACHE_HOME."""
    args = shlex.split(cmd)[1:]
    out = ctx.tmp / "out-local"
    if args[0] == "research":
        args += ["--out", str(out)]
    proc = run_cli(*args, cwd=ROOT, env={**ctx.env, "XDG_CACHE_HOME": str(ctx.tmp / "cache")})
    assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
    assert list((ctx.tmp / "cache" / "agentkit" / "index").glob("*.sqlite"))
    corpus = (ROOT / "tests" / "data" / "corpus").as_uri()
    if args[0] == "index":
        assert "5 documents" in proc.stdout
    else:
        answer = (out / "answer.md").read_text()
        assert "[citation:1]" in answer and f"1. [The Orrin Valley Observatory]({corpus}/observatory.md#p1)" in answer


def _eval(cmd: str, ctx: Ctx) -> None:
    """``agentkit eval swebench`` over the example instances (their images built offline by
    tests/data/swebench/build-image.sh; --pull never) and ``agentkit eval qa`` over tests/data/corpus,
    with the README's replayed models; the figures the README quotes are checked."""
    args = shlex.split(cmd)[1:]
    out = ctx.tmp / "out-eval"
    if "--out" in args:
        args[args.index("--out") + 1] = str(out)
    else:
        args += ["--out", str(out)]
    if args[1] == "swebench":
        from tests.fixtures_sandbox import require_docker

        require_docker()
        build = subprocess.run(["bash", str(ROOT / "tests/data/swebench/build-image.sh")], capture_output=True,
                               text=True, timeout=240)
        assert build.returncode == 0, build.stderr
        assert "--pull" in args and args[args.index("--pull") + 1] == "never"  # no registry is ever asked
    proc = run_cli(*args, cwd=ROOT, env={**ctx.env, "XDG_CACHE_HOME": str(ctx.tmp / "cache")})
    report = json.loads((out / "report.json").read_text())
    if args[1] == "swebench":
        assert proc.returncode == 1 and "1/2 resolved" in proc.stdout, (proc.stdout, proc.stderr)
        assert report["resolved"] == 1 and report["total"] == 2 and report["resolved_ids"] == ["demo__calc-1"]
        assert len((out / "preds.jsonl").read_text().splitlines()) == 2
    else:
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        assert (report["n"], report["exact_match"], round(report["f1"], 2), report["contains"],
                report["judge_accuracy"]) == (2, 0.0, 0.14, 1.0, 1.0)


def _docker_agentkit(cmd: str, ctx: Ctx) -> None:
    from tests.fixtures_sandbox import require_docker

    require_docker()
    _agentkit(cmd, ctx)


def _handler(cmd: str) -> Callable[[str, Ctx], None]:
    found = [h for pattern, h in HANDLERS if re.search(pattern, cmd)]
    assert len(found) == 1, f"README command without exactly one test handler: {cmd}"
    return found[0]


def test_every_command_has_a_handler() -> None:
    assert len(COMMANDS) >= 15
    for cmd in COMMANDS:
        _handler(cmd)
    # the two commands of the quick start, exactly
    assert COMMANDS[0] == ("python3 -m venv .venv && .venv/bin/pip install -U pip && .venv/bin/pip install -e . "
                           "&& .venv/bin/agentkit demo")
    assert COMMANDS[1] == "bash scripts/test"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_readme_command(cmd: str, tmp_path: Path, server: FakeServer, site: dict[str, str], finished_run: Path) -> None:
    _handler(cmd)(cmd, Ctx(tmp_path, server, site, finished_run))


def test_readme_python_snippet_runs(tmp_path: Path) -> None:
    (code,) = _blocks("python")
    script = tmp_path / "snippet.py"
    replay = tmp_path / "replay.jsonl"
    replay.write_text(json.dumps({"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "convert", "arguments": '{"value": 42.195, "unit": "km"}'}}]})
        + "\n" + json.dumps({"role": "assistant", "content": "About 26.22 miles."}) + "\n")
    assert 'make_model("deepseek/deepseek-chat-v3.1")' in code
    script.write_text(code.replace('make_model("deepseek/deepseek-chat-v3.1")', f'make_model("replay:{replay}")'))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("done About 26.22 miles.")
    assert '"26.22 mi"' in (tmp_path / "runs" / "lib.jsonl").read_text()
