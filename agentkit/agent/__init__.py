"""The agent, split by job in one direction: the loop (``loop.py``) asks the model for a turn
(``ask.py``), acts on it (``calls.py``: its tool calls, or the answer), under the budget
(``budget.py``: ``Limits`` and per-call caps) and into the run record (``record.py``: state,
trajectory, run header, resume), which uses none of them."""

from agentkit.agent.budget import Budget, Limits
from agentkit.agent.calls import SUBMIT
from agentkit.agent.loop import DEFAULT_SYSTEM, Agent
from agentkit.agent.runs import AgentRun
from agentkit.agent.record import INTERRUPTED, RunRecord, RunResult, Status

__all__ = ["Agent", "AgentRun", "Limits", "RunResult", "DEFAULT_SYSTEM", "INTERRUPTED", "SUBMIT", "Budget", "RunRecord", "Status"]
