"""Built-in tools (installed as ``agentkit.tools``)."""
