"""Benchmark driver for mini-swe-agent (run with the interpreter of its own virtualenv).

Runs the scripted episode with mini-swe-agent's own parts: ``DefaultAgent`` + ``LitellmModel``
(litellm, the way mini-swe-agent talks to any OpenAI-compatible server) + ``LocalEnvironment``
(one subprocess per command). Concurrent runs use a thread pool, which is what mini-swe-agent's
own batch runner (``mini-extra swebench --workers N``) does. With ``--tool echo`` the command is
answered in-process instead, so a concurrency run measures the framework, not process spawning.
Prints one JSON line: ``{"framework", "wall_s", "peak_mb", "statuses"}``.
"""

from __future__ import annotations

import os

os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price list
os.environ.setdefault("MSWEA_COST_TRACKING", "ignore_errors")
os.environ.setdefault("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", "1")  # fail fast: the server never errs

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from minisweagent.agents.default import DefaultAgent  # noqa: E402
from minisweagent.environments.local import LocalEnvironment  # noqa: E402
from minisweagent.exceptions import Submitted  # noqa: E402
from minisweagent.models.litellm_model import LitellmModel  # noqa: E402

SYSTEM = "You are a helpful assistant that can interact with a computer shell."
INSTANCE = "{{task}}"


class EchoEnvironment(LocalEnvironment):
    """Answers ``echo X`` without a subprocess (concurrency runs measure the framework only)."""

    def execute(self, action: dict, cwd: str = "", *, timeout: int | None = None) -> dict:
        text = action.get("command", "").removeprefix("echo ").strip()
        output = {"output": text + "\n", "returncode": 0, "exception_info": ""}
        self._check_finished(output)
        return output


def run_one(base: str, steps: int, run_id: str, tool: str) -> str:
    model = LitellmModel(model_name="openai/deepseek-chat", cost_tracking="ignore_errors",
                         model_kwargs={"api_base": f"{base}/bash-submit/bash/{steps}/v1", "api_key": "bench",
                                       "timeout": 60})
    env = EchoEnvironment() if tool == "echo" else LocalEnvironment(cwd=os.getcwd())
    agent = DefaultAgent(model, env, system_template=SYSTEM, instance_template=INSTANCE,
                         step_limit=steps + 5, cost_limit=0)
    try:
        result = agent.run(f"Run the commands. [[run:{run_id}]]")
    except Submitted:  # older versions raised it out of run()
        return "Submitted"
    return str(result.get("exit_status"))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited over exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--tool", default="bash", choices=["bash", "echo"])
    ap.add_argument("--warmup", action="store_true")
    ap.add_argument("--tag", default="m")
    a = ap.parse_args()
    logging.disable(logging.CRITICAL)
    if a.warmup:
        run_one(a.base, a.steps, f"{a.tag}-warmup", a.tool)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=a.concurrency) as pool:
        statuses = list(pool.map(lambda i: run_one(a.base, a.steps, f"{a.tag}-{i}", a.tool), range(a.concurrency)))
    wall = time.perf_counter() - t0
    peak_mb = peak_rss_mb()
    print(json.dumps({"framework": "mini-swe-agent", "wall_s": wall, "peak_mb": peak_mb, "statuses": statuses}))


if __name__ == "__main__":
    main()
