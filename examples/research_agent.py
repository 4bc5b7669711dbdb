"""The search agent from Python: the `research` preset (thinking mode, search + fetch) and an answer
with [citation:N] markers plus the numbered sources.

    python examples/research_agent.py "Who designed the Vellmar tide clock?"       # DuckDuckGo + OpenRouter
    python examples/research_agent.py QUESTION --model replay:FILE --search-backend fixture:FILE.json \
        --fetch-allow 127.0.0.1                                                    # offline (see tests)
"""
import argparse

from agentkit.models import make_model
from agentkit.presets import research_preset
from agentkit.app.runner import answer_markdown
from agentkit.tools import search_tools

parser = argparse.ArgumentParser()
parser.add_argument("question")
parser.add_argument("--model", default="deepseek/deepseek-chat-v3.1")
parser.add_argument("--search-backend", default="ddgs")
parser.add_argument("--fetch-allow", action="append", default=[])
args = parser.parse_args()

preset = research_preset()
tools = search_tools(args.search_backend, fetch_allow=args.fetch_allow)
agent = preset.build_agent(make_model(args.model), tools=tools)
result = agent.run_sync(args.question)
print(answer_markdown(result.answer or "", result.sources))
