"""Library use in 20 lines: an Agent with a custom @tool.

    python examples/library.py                    # DeepSeek V3.1 on OpenRouter (needs OPENROUTER_API_KEY)
    python examples/library.py replay:examples/replays/library.jsonl   # offline
"""
import sys
from typing import Literal

from agentkit import Agent, make_model, tool


@tool
def convert(value: float, unit: Literal["km", "mi"]) -> str:
    """Convert a distance between kilometres and miles.

    Args:
        value: the distance to convert
        unit: the unit `value` is given in
    """
    return f"{value * 0.621371:.2f} mi" if unit == "km" else f"{value / 0.621371:.2f} km"


model = make_model(sys.argv[1] if len(sys.argv) > 1 else "deepseek/deepseek-chat-v3.1")
agent = Agent(model, tools=[convert], system="Use the tools for any unit conversion.",
              trajectory="runs/library-example.jsonl")
result = agent.run_sync("How many miles is a marathon (42.195 km)?")
print(result.status, "|", result.answer)
