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

from driver_common import driver_args, run_threaded

os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price list
os.environ.setdefault("MSWEA_COST_TRACKING", "ignore_errors")
os.environ.setdefault("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", "1")  # fail fast: the server never errs


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


def main() -> None:
    run_threaded("mini-swe-agent", run_one, driver_args("m").parse_args())


if __name__ == "__main__":
    main()
