"""DeepSeek V3.1 on your own vLLM or SGLang server, in raw-template mode: agentkit renders the
prompt with the official V3.1 template itself, calls /v1/completions and parses the tool calls,
so it does not depend on the server's chat template or tool parser.

Serve the model (one of):
    vllm serve deepseek-ai/DeepSeek-V3.1 --port 8000
    python -m sglang.launch_server --model-path deepseek-ai/DeepSeek-V3.1 --port 30000
Then:
    python examples/self_hosted.py --base-url http://127.0.0.1:8000/v1
    python examples/self_hosted.py --base-url http://127.0.0.1:8000/v1 --chat   # server-side template + parser
(`--chat` needs vLLM started with --enable-auto-tool-choice --tool-call-parser deepseek_v31.)
The CLI equivalent: agentkit code TASK --repo PATH --provider raw --base-url URL --model deepseek-ai/DeepSeek-V3.1
"""
import argparse
import asyncio
import tempfile
from pathlib import Path

from agentkit import Agent
from agentkit.models import make_model
from agentkit.sandboxes import LocalSandbox
from agentkit.tools import BashTool

parser = argparse.ArgumentParser()
parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
parser.add_argument("--model", default="deepseek-ai/DeepSeek-V3.1")
parser.add_argument("--chat", action="store_true", help="use the server's chat endpoint (provider vllm)")
args = parser.parse_args()


async def main() -> None:
    model = make_model(args.model, provider="vllm" if args.chat else "raw", base_url=args.base_url)
    work = Path(tempfile.mkdtemp(prefix="self-hosted-"))
    for name in ("a.py", "b.py", "notes.txt"):
        (work / name).write_text("# example\n")
    async with LocalSandbox(workspace=work) as sandbox:
        agent = Agent(model, tools=[BashTool()], sandbox=sandbox, thinking=False,
                      system="You are a careful assistant with a shell. Check facts with commands.")
        result = await agent.run("How many Python files are in the current directory?")
    await model.aclose()
    print(result.status, "|", result.answer)


asyncio.run(main())
