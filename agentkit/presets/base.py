"""``Preset``: everything that makes a generic agent a code agent or a search agent.

A preset is data (system prompt, tool names, thinking mode, stop rule); ``build_agent`` turns it
into an ``Agent`` with concrete tools, so the CLI, batch runs and library users share one path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.models.base import ModelSettings

if TYPE_CHECKING:  # types only: the agent loads when an agent is built
    from agentkit.agent import Agent, Limits
    from agentkit.models.base import Model
    from agentkit.sandboxes.base import Sandbox
    from agentkit.tools.base import AnyTool


class ToolOptions(BaseModel):
    """Per-run options of the preset tools (CLI flags map onto these)."""

    model_config = ConfigDict(extra="forbid")

    search_backend: str | None = None  # e.g. "duckduckgo", "searxng:URL", "fixture:PATH"
    max_searches: int | None = None
    fetch_allow: list[str] = Field(default_factory=list)  # hosts/CIDRs fetch may reach despite the SSRF guard
    confirm: bool = False  # ask on the terminal before each shell command


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    system: str
    tools: list[str]
    thinking: bool
    require_submit: bool
    needs_sandbox: bool = False
    settings: ModelSettings = Field(default_factory=ModelSettings)

    def build_tools(self, options: ToolOptions | None = None) -> list[AnyTool]:
        """The preset's tools, built with ``options`` (search backend, fetch allow-list, ...)."""
        from agentkit.presets.toolset import build_tools

        return build_tools(self.tools, options or ToolOptions())

    def build_agent(self, model: Model | str, *, sandbox: Sandbox | None = None,
                    tools: Sequence[AnyTool] | None = None, extra_tools: Sequence[AnyTool] = (),
                    options: ToolOptions | None = None, limits: Limits | None = None,
                    trajectory: str | Path | None = None, run_info: dict[str, Any] | None = None,
                    **agent_kw: Any) -> Agent:
        """An ``agentkit.agent.Agent`` for this preset (``tools`` replaces the preset's tool set).

        A preset whose tools run commands (``needs_sandbox``: the code agent, research with
        ``python``) needs ``sandbox=``; without one it fails here, not at the first command."""
        from agentkit.agent import Agent, Limits
        from agentkit.errors import ConfigError

        if self.needs_sandbox and sandbox is None and tools is None:
            raise ConfigError(f"the {self.name} preset runs commands in a sandbox: pass "
                              "sandbox=LocalSandbox(workspace=PATH) or DockerSandbox(image=..., workspace=PATH) "
                              "(from agentkit.sandboxes), opened with `async with`")

        kw: dict[str, Any] = dict(
            tools=list(tools if tools is not None else self.build_tools(options)) + list(extra_tools),
            sandbox=sandbox, system=self.system, limits=limits if limits is not None else Limits(),
            settings=self.settings.merged(ModelSettings(thinking=self.thinking)),
            require_submit=self.require_submit,
            run_info={"preset": self.name, **(run_info or {})},
        )
        if trajectory is not None:
            kw["trajectory"] = str(trajectory)
        kw.update(agent_kw)
        return Agent(model, **kw)
