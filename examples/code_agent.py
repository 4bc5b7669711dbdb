"""The code agent from Python: ``run_code_sync`` works on a copy of the repository in a local
sandbox, runs the tests there, and returns the patch and the test result on a ``CodeResult``.

    python examples/code_agent.py PATH/TO/REPO "Fix the failing test" [MODEL]
    python examples/code_agent.py agentkit/demo/repo "$(cat agentkit/demo/repo/ISSUE.md)" \
        replay:agentkit/demo/code_replay.jsonl                               # offline

`agentkit code TASK --repo PATH --test-cmd CMD` does the same from the command line.
"""
import sys
import tempfile

from agentkit import Limits, run_code_sync


def main(repo: str, task: str, model_name: str) -> None:
    result = run_code_sync(task, repo=repo, model=model_name, test_cmd="python3 -m unittest discover -s tests",
                           out=tempfile.mkdtemp(prefix="code-agent-"), limits=Limits(max_steps=30))
    print(f"status: {result.status} after {result.steps} steps: {result.answer}")
    if result.test is not None:
        print(f"tests: {'passed' if result.test.passed else 'failed'} (exit {result.test.exit_code})")
    print(f"changed: {', '.join(result.changed_files) or 'nothing'}")
    print(result.patch)
    print(f"run folder: {result.out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "deepseek/deepseek-chat-v3.1")
