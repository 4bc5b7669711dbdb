"""The model-facing DeepSeek protocol: prompts rendered as each version's chat template renders
them, completions parsed (one-shot and streaming), special tokens, leaked-markup repair, and token
counting (``agentkit.deepseek.tokens``, imported on its own: it loads the tokenizer table).

Depends on ``agentkit.messages`` only; the models use it, and so do the renderers for people.
"""

from __future__ import annotations

from agentkit.deepseek.parse import StreamParser, parse_completion
from agentkit.deepseek.render import SearchAgentFormat, render_prompt, render_tools_block, template_for_model
from agentkit.deepseek.repair import repair_message
from agentkit.deepseek.special import neutralize

__all__ = ["SearchAgentFormat", "StreamParser", "neutralize", "parse_completion", "render_prompt",
           "render_tools_block", "repair_message", "template_for_model"]
