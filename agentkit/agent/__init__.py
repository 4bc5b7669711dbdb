"""The agent, split by job in one direction: the loop (``loop.py``: ask, act, record) uses one
turn's tool calls (``calls.py``), the budget (``budget.py``: ``Limits`` and per-call caps) and
the run record (``record.py``: state, trajectory, run header, resume), which uses neither."""

from agentkit.agent.budget import Budget, Limits
from agentkit.agent.calls import SUBMIT
from agentkit.agent.loop import DEFAULT_SYSTEM, Agent
from agentkit.agent.runs import AgentRun
from agentkit.agent.record import INTERRUPTED, RunRecord, RunResult, Status

__all__ = ["Agent", "AgentRun", "Limits", "RunResult", "DEFAULT_SYSTEM", "INTERRUPTED", "SUBMIT", "Budget", "RunRecord", "Status"]
