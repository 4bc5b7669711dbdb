"""Trajectories for people and trainers: the HTML viewer, a markdown transcript, an OpenAI
fine-tuning export, and the exact DeepSeek prompt text of a run.

Presentation only: it reads trajectory files and uses ``agentkit.deepseek`` to show prompts.
"""

from __future__ import annotations

from agentkit.render.html import render_html
from agentkit.render.markdown import render_markdown
from agentkit.render.openai import export_openai
from agentkit.render.trajectories import render_deepseek

__all__ = ["export_openai", "render_deepseek", "render_html", "render_markdown"]
