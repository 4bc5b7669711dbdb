"""``agentkit eval swebench``: instance files, selection, image names, the pull policy, the test-log
grader, and an offline end-to-end run. The images are built here from the offline sandbox image
with a small git repository at /testbed and tagged with the official names of two fake instances;
runs use ``--pull never``, so no test contacts a registry. A replayed model fixes the bug of the
first instance and not the second's: resolved 1/2, and preds.jsonl loads with the swebench
package's own prediction loader."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from agentkit.app.eval_swebench import (DEFAULT_IMAGE_TEMPLATE, Instance, docker_id, grade_log, image_name,
                                        load_instances, parse_test_log, select)
from agentkit.errors import ConfigError
from tests.fixtures_cli import cli_env, run_cli, write_jsonl
from tests.fixtures_sandbox import SANDBOX_IMAGE, require_docker

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n"
TESTS = ("import unittest\n\nfrom calc import add, mul\n\n\nclass CalcTest(unittest.TestCase):\n"
         "    def test_add_zero(self):\n        self.assertEqual(add(2, 0), 2)\n")
ADD_TEST = "\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"
MUL_TEST = "\n    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n"
TEST_CMD = "python3 -m unittest -v tests.test_calc"


def _instance(iid: str, new_test: str, name: str, commit: str, issue: str) -> dict:
    old_lines = TESTS.count("\n")
    test_patch = (f"diff --git a/tests/test_calc.py b/tests/test_calc.py\n--- a/tests/test_calc.py\n"
                  f"+++ b/tests/test_calc.py\n@@ -{old_lines - 1},2 +{old_lines - 1},{2 + new_test.count(chr(10))} @@\n"
                  + "".join(f" {line}\n" for line in TESTS.splitlines()[-2:])
                  + "".join(f"+{line}\n" for line in new_test.splitlines()))
    return {"instance_id": iid, "repo": "demo/calc", "base_commit": commit, "problem_statement": issue,
            "hints_text": "", "test_patch": test_patch, "version": "0.1", "environment_setup_commit": commit,
            "FAIL_TO_PASS": json.dumps([f"{name} (tests.test_calc.CalcTest)"]),
            "PASS_TO_PASS": json.dumps(["test_add_zero (tests.test_calc.CalcTest)"]), "test_cmd": TEST_CMD}


# ------------------------------------------------------------------------------------------- units
def test_instances_load_from_json_jsonl_and_parquet(tmp_path: Path) -> None:
    rows = [_instance("demo__calc-1", ADD_TEST, "test_add", "abc", "add is wrong"),
            _instance("demo__calc-2", MUL_TEST, "test_mul", "abc", "mul is wrong")]
    jsonl = write_jsonl(tmp_path / "i.jsonl", rows)
    (tmp_path / "i.json").write_text(json.dumps(rows))
    for path in (jsonl, tmp_path / "i.json"):
        got = load_instances(path)
        assert [i.instance_id for i in got] == ["demo__calc-1", "demo__calc-2"]
        assert got[0].FAIL_TO_PASS == ["test_add (tests.test_calc.CalcTest)"] and got[0].test_cmd == TEST_CMD
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "test_cmd"} for r in rows]),
                   tmp_path / "i.parquet")
    assert load_instances(tmp_path / "i.parquet")[1].PASS_TO_PASS == ["test_add_zero (tests.test_calc.CalcTest)"]


def test_bad_instances_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"i.jsonl:1: problem_statement: Field required"):
        load_instances(write_jsonl(tmp_path / "i.jsonl", [{"instance_id": "a__b-1"}]))
    with pytest.raises(ConfigError, match=r"FAIL_TO_PASS: Value error, must be a JSON-encoded list"):
        load_instances(write_jsonl(tmp_path / "j.jsonl", [{"instance_id": "a__b-1", "problem_statement": "x",
                                                           "FAIL_TO_PASS": "[oops"}]))
    with pytest.raises(ConfigError, match="no such file"):
        load_instances(tmp_path / "missing.jsonl")


def test_selection_and_image_names() -> None:
    insts = [Instance(instance_id=f"django__django-{n}", problem_statement="x") for n in range(10)]
    assert [i.instance_id[-1] for i in select(insts, filter=r"-[2-5]$", slice_="1:3")] == ["3", "4"]
    a, b = select(insts, shuffle=True, seed=1), select(list(reversed(insts)), shuffle=True, seed=1)
    assert [i.instance_id for i in a] == [i.instance_id for i in b] != [i.instance_id for i in insts]
    with pytest.raises(ConfigError, match="filter="):
        select(insts, filter="(")
    inst = Instance(instance_id="astropy__astropy-12907", problem_statement="x")
    assert docker_id(inst.instance_id) == "astropy_1776_astropy-12907"
    assert image_name(inst) == "swebench/sweb.eval.x86_64.astropy_1776_astropy-12907:latest"
    assert image_name(inst, "myreg/swe:{docker_id}") == "myreg/swe:astropy_1776_astropy-12907"
    assert image_name(inst, "local/{instance_id}") == "local/astropy__astropy-12907"
    with pytest.raises(ConfigError, match="image_template="):
        image_name(inst, "reg/{nope}")
    assert DEFAULT_IMAGE_TEMPLATE.startswith("swebench/sweb.eval.x86_64.")


def test_grading_reads_pytest_and_unittest_logs() -> None:
    log = ("tests/test_a.py::test_one PASSED\ntests/test_a.py::test_two FAILED\n"
           "PASSED tests/test_b.py::test_three\nFAILED tests/test_b.py::test_four - assert 1 == 2\n"
           "test_x (pkg.tests.T.test_x) ... ok\ntest_y (pkg.tests.T) ... FAIL\ntest_z (pkg.tests.T) ... skipped 'no'\n")
    status = parse_test_log(log)
    assert status["tests/test_a.py::test_one"] == "PASSED" and status["tests/test_b.py::test_four"] == "FAILED"
    assert status["test_x (pkg.tests.T)"] == status["test_x (pkg.tests.T.test_x)"] == "ok"
    assert status["test_y (pkg.tests.T)"] == "FAIL" and status["test_z (pkg.tests.T)"] == "skipped"
    assert grade_log(log, ["tests/test_b.py::test_three"], ["test_x (pkg.tests.T)"], 1)["resolved"] is True
    bad = grade_log(log, ["tests/test_a.py::test_two"], ["test_missing (pkg.T)"], 1)
    assert bad["resolved"] is False and bad["tests"]["PASS_TO_PASS"]["failure"] == ["test_missing (pkg.T)"]
    assert grade_log("", [], [], 0)["resolved"] is True and grade_log("", [], [], 1)["resolved"] is False


# ----------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def calc_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[dict], list[str]]]:
    """Two fake instances over one small repo, their images built from the offline sandbox image."""
    require_docker()
    import docker

    tmp = tmp_path_factory.mktemp("swe")
    repo = tmp / "ctx" / "testbed"
    (repo / "tests").mkdir(parents=True)
    (repo / "calc.py").write_text(CALC)
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "calc"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (tmp / "ctx" / "Dockerfile").write_text(f"FROM {SANDBOX_IMAGE}\nCOPY --chown=agent:agent testbed /testbed\n"
                                            "WORKDIR /testbed\n")
    suffix = uuid.uuid4().hex[:8]
    ids = [f"demo{suffix}__calc-1", f"demo{suffix}__calc-2"]
    rows = [_instance(ids[0], ADD_TEST, "test_add", commit, "add(2, 3) returns -1 instead of 5."),
            _instance(ids[1], MUL_TEST, "test_mul", commit, "mul(2, 3) returns 5 instead of 6.")]
    client = docker.from_env()
    tags = [image_name(Instance.model_validate(r)) for r in rows]
    try:
        image, _ = client.images.build(path=str(tmp / "ctx"), tag=tags[0], rm=True, pull=False)
        image.tag(*tags[1].rsplit(":", 1))
        yield rows, tags
    finally:
        for tag in tags:
            try:
                client.images.remove(tag, force=True)
            except docker.errors.DockerException:
                pass
        client.close()


FIX = [{"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
           "name": "str_replace_editor", "arguments": json.dumps({"command": "str_replace", "path": "calc.py",
                                                                   "old_str": "return a - b", "new_str": "return a + b"})}}]},
       {"role": "assistant", "content": "", "tool_calls": [{"id": "c2", "type": "function", "function": {
           "name": "submit", "arguments": json.dumps({"summary": "add() adds"})}}]}]


def test_offline_swebench_run_resolves_one_of_two(calc_images: tuple[list[dict], list[str]], tmp_path: Path) -> None:
    rows, _ = calc_images
    instances = write_jsonl(tmp_path / "instances.jsonl", rows)
    replay = write_jsonl(tmp_path / "fix.jsonl", FIX)
    out = tmp_path / "out"
    proc = run_cli("eval", "swebench", str(instances), "--pull", "never", "--evaluate", "--model", f"replay:{replay}",
                   "--workers", "2", "--out", str(out), env=cli_env(), timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one instance is not resolved
    assert "1/2 resolved" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["resolved"] == 1 and report["total"] == 2 and report["resolved_ids"] == [rows[0]["instance_id"]]
    assert report["unresolved_ids"] == [rows[1]["instance_id"]] and report["error_ids"] == []
    first = report["instances"][rows[0]["instance_id"]]
    assert first["status"] == "done" and first["steps"] == 2 and "cost_usd" in first and "tokens" in first
    # preds.jsonl: one prediction per instance in the harness's format, the patch a git diff of calc.py
    preds = [json.loads(line) for line in (out / "preds.jsonl").read_text().splitlines()]
    assert [p["instance_id"] for p in preds] == [r["instance_id"] for r in rows]
    assert all(set(p) == {"instance_id", "model_name_or_path", "model_patch"} for p in preds)
    assert preds[0]["model_name_or_path"] == f"replay:{replay}"
    assert preds[0]["model_patch"].startswith("diff --git a/calc.py b/calc.py") and "+    return a + b" in preds[0]["model_patch"]
    swebench_utils = pytest.importorskip("swebench.harness.utils")
    loaded = swebench_utils.get_predictions_from_file(str(out / "preds.jsonl"), "SWE-bench/SWE-bench_Lite", "test")
    assert [p["instance_id"] for p in loaded] == [p["instance_id"] for p in preds]
    # per-task folders as batch writes them, with the test log of the evaluation
    task = out / "tasks" / rows[0]["instance_id"]
    assert {"trajectory.jsonl", "patch.diff", "result.json"} <= {p.name for p in task.iterdir()}
    log = (task / "eval" / "test_output.txt").read_text()
    assert "test_add (tests.test_calc.CalcTest" in log and "OK" in log
    assert "test_mul" in (out / "tasks" / rows[1]["instance_id"] / "eval" / "test_output.txt").read_text()
    # a re-run skips finished instances and writes the same report
    again = run_cli("eval", "swebench", str(instances), "--pull", "never", "--model", f"replay:{replay}",
                    "--out", str(out), "--json", env=cli_env(), timeout=120)
    assert json.loads(again.stdout)["resolved"] == 1


def test_a_missing_image_is_a_per_task_error_with_pull_never(tmp_path: Path) -> None:
    require_docker()
    rows = [{"instance_id": f"nobody{uuid.uuid4().hex[:8]}__none-1", "problem_statement": "x", "base_commit": "abc"}]
    out = tmp_path / "out"
    proc = run_cli("eval", "swebench", str(write_jsonl(tmp_path / "i.jsonl", rows)), "--pull", "never",
                   "--model", f"replay:{write_jsonl(tmp_path / 'r.jsonl', FIX)}", "--out", str(out), env=cli_env(),
                   timeout=60)
    assert proc.returncode == 1
    assert "is not present and --pull never was given" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["error_ids"] == [rows[0]["instance_id"]] and report["resolved"] == 0
    line = json.loads((out / "results.jsonl").read_text())
    assert line["status"] == "error" and "sweb.eval.x86_64.nobody" in line["error"]
    assert json.loads((out / "preds.jsonl").read_text())["model_patch"] == ""
