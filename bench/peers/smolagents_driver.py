"""Benchmark driver for smolagents' ``ToolCallingAgent`` (run with its own virtualenv's interpreter).

The agent gets one ``bash`` tool (``subprocess.run`` with a shell, as a smolagents user writes it)
and talks to the server through ``OpenAIServerModel`` (the official ``openai`` client).
smolagents has no runner for many agents at once, so concurrent runs use a thread pool, the
usual way to run it in parallel. With ``--tool echo`` the tool answers in-process instead.
Prints one JSON line: ``{"framework", "wall_s", "peak_mb", "statuses"}``.
"""

from __future__ import annotations

import subprocess

from driver_common import driver_args, run_threaded
from smolagents import OpenAIServerModel, Tool, ToolCallingAgent
from smolagents.monitoring import LogLevel


class BashTool(Tool):
    name = "bash"
    description = "Run a bash command and return its output."
    inputs = {"command": {"type": "string", "description": "The command to run."}}
    output_type = "string"

    def forward(self, command: str) -> str:
        proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
        return proc.stdout + proc.stderr


class EchoTool(Tool):
    name = "echo"
    description = "Return the text."
    inputs = {"text": {"type": "string", "description": "The text."}}
    output_type = "string"

    def forward(self, text: str) -> str:
        return text


def run_one(base: str, steps: int, run_id: str, tool: str) -> str:
    model = OpenAIServerModel(model_id="deepseek-chat", api_base=f"{base}/final_answer/{tool}/{steps}/v1",
                              api_key="bench")
    agent = ToolCallingAgent(tools=[BashTool() if tool == "bash" else EchoTool()], model=model,
                             max_steps=steps + 5, verbosity_level=LogLevel.OFF)
    answer = agent.run(f"Run the commands. [[run:{run_id}]]")
    return "done" if answer == "done" else f"unexpected answer {answer!r}"


def main() -> None:
    run_threaded("smolagents", run_one, driver_args("s").parse_args())


if __name__ == "__main__":
    main()
