"""The budget of a run: ``Limits`` (totals across resumes, except wall time), the check before
each step, and the cap on each call's ``max_tokens`` so that one call cannot overrun them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel

from agentkit.events import LimitReached
from agentkit.messages import Usage
from agentkit.models.catalog import ModelInfo, lookup

if TYPE_CHECKING:
    from agentkit.models.base import Model, ModelSettings


class Limits(BaseModel):
    """Budgets for one run (totals across resumes, except wall time which is per session)."""

    max_steps: int | None = 50
    max_cost_usd: float | None = None
    max_total_tokens: int | None = None  # prompt + completion tokens, summed over the run's calls
    max_wall_s: float | None = None
    max_format_errors: int = 3  # consecutive malformed turns before the run ends with "error"
    max_repeats: int = 3  # identical action+observation this many times: warn; once more: end


class Budget:
    """``Limits`` applied to one run: what is left before each step and for each call.

    ``window``, ``max_output`` and ``prices`` (USD per million input/output tokens) come from the
    catalog entry unless given; ``max_tokens`` is the caller's own cap per call."""

    def __init__(self, limits: Limits, info: ModelInfo | None, max_tokens: int | None = None,
                 window: int | None = None, prices: tuple[float, float] | None = None) -> None:
        self.limits, self.max_tokens = limits, max_tokens
        self.window = window or (info.context_window if info else None)
        self.max_output = info.max_output if info else None
        self.prices = prices or ((info.input_per_m, info.output_per_m) if info else None)
        self.started = time.monotonic()

    @classmethod
    def for_model(cls, limits: Limits, model: Model, settings: ModelSettings, window: int | None = None,
                  prices: tuple[float, float] | None = None) -> Budget:
        """The budget for ``model`` from the catalog; a run pinned to one OpenRouter provider gets
        that provider's window and prices."""
        info = lookup(model.name)
        if info is not None:
            info = info.routed(settings.provider or getattr(getattr(model, "settings", None), "provider", None))
        return cls(limits, info, settings.max_tokens, window, prices)

    def start(self) -> None:
        """Wall time counts per session: from the start (or resume) of the run."""
        self.started = time.monotonic()

    def exceeded(self, steps: int, usage: Usage) -> LimitReached | None:
        """The first limit the run has reached before its next step, if any."""
        lim = self.limits
        checks = [("steps", steps, lim.max_steps), ("tokens", usage.total, lim.max_total_tokens),
                  ("cost", usage.cost_usd or 0.0, lim.max_cost_usd),
                  ("wall_time", time.monotonic() - self.started, lim.max_wall_s)]
        for name, value, maximum in checks:
            if maximum is not None and value >= maximum:
                return LimitReached(step=steps, limit=name, value=value, maximum=maximum)
        return None

    def cap(self, steps: int, usage: Usage, prompt_tokens: int) -> tuple[int | None, LimitReached | None]:
        """The call's max_tokens, so it cannot overrun the token or cost budget (or the window)."""
        lim, caps = self.limits, list[tuple[str, int, float, float]]()
        if lim.max_total_tokens is not None:
            caps.append(("tokens", lim.max_total_tokens - usage.total - prompt_tokens, usage.total,
                         lim.max_total_tokens))
        if lim.max_cost_usd is not None and self.prices and usage.cost_usd is not None:
            p_in, p_out = self.prices
            left = lim.max_cost_usd - usage.cost_usd - prompt_tokens * p_in / 1e6
            room = int(left * 1e6 / p_out) if p_out > 0 else 1 << 30
            caps.append(("cost", room, usage.cost_usd, lim.max_cost_usd))
        for name, room, value, maximum in caps:
            if room < 1:
                return None, LimitReached(step=steps, limit=name, value=value, maximum=maximum)
        if not caps and not self.max_tokens:
            return None, None  # nothing to enforce: the provider's default applies
        bounds = [room for _, room, _, _ in caps] + [b for b in (self.max_tokens, self.max_output) if b]
        if self.window:  # prompt + max_tokens past the window is refused by most servers
            bounds.append(max(1, self.window - prompt_tokens))
        return int(min(bounds)), None

    def time_left(self) -> float | None:
        """Seconds of wall time left (a tool call's deadline), or None without a wall-time limit."""
        if self.limits.max_wall_s is None:
            return None
        return self.limits.max_wall_s - (time.monotonic() - self.started)
