"""The code agent from Python: the `code` preset (system prompt, bash + editor + submit, non-thinking)
on a working copy of a repository in a local sandbox, then the repo's tests.

    python examples/code_agent.py PATH/TO/REPO "Fix the failing test" [MODEL]
    python examples/code_agent.py agentkit/demo/repo "$(cat agentkit/demo/repo/ISSUE.md)" \
        replay:agentkit/demo/code_replay.jsonl                               # offline

`agentkit code TASK --repo PATH` does the same plus patch.diff, result.json and the HTML view.
"""
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from agentkit.models import make_model
from agentkit.presets import CODE
from agentkit.sandboxes import LocalSandbox


async def main(repo: str, task: str, model_name: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="code-agent-")) / "repo"
    shutil.copytree(repo, work)  # never edit the original
    async with LocalSandbox(workspace=work) as sandbox:
        agent = CODE.build_agent(make_model(model_name), sandbox=sandbox, trajectory=work.parent / "trajectory.jsonl")
        result = await agent.run(task)
        tests = await sandbox.run("python3 -m unittest discover -s tests", timeout=300)
    print(f"status: {result.status} after {result.steps} steps: {result.answer}")
    print(f"tests: {'passed' if tests.exit_code == 0 else 'failed'}")
    print(f"working copy: {work}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "deepseek/deepseek-chat-v3.1"))
