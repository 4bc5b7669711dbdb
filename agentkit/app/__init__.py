"""Running and recording runs: what stands between the CLI and the agent.

``runner`` turns options into a run (workspace → sandbox → agent → the run folder's outputs),
``workspace`` makes the working copy and the patch, ``batch`` runs many tasks, ``progress`` shows a
run as it happens. The agents themselves are defined in ``agentkit.presets``.
"""
