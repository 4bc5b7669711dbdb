"""Lifecycles (issue 15, part 5): models are async context managers with a sync ``close()``;
``run_sync`` leaves no socket behind; an ``Agent`` closes the model it made; a ``LocalSandbox``
used without ``async with`` is cleaned up at exit with one clear warning. Each case runs in a
fresh interpreter with ``-W error::ResourceWarning``, where a leak prints "Exception ignored"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run([sys.executable, "-W", "error::ResourceWarning", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    for bad in ("ResourceWarning", "Exception ignored", "Event loop is closed", "Traceback", "is closed"):
        assert bad not in proc.stderr, proc.stderr


def test_run_sync_twice_leaves_no_socket(tmp_path: Path) -> None:
    proc = _run(tmp_path, """
        import gc
        from agentkit import Agent
        from agentkit.models import OpenAICompatible
        from agentkit.testing.server import FakeServer, Reply

        srv = FakeServer([Reply(content="one"), Reply(content="two")]).start_in_thread()
        agent = Agent(OpenAICompatible("m", base_url=srv.base_url, api_key="k"))
        print(agent.run_sync("a").answer, agent.run_sync("b").answer)
        gc.collect()
        srv.stop()
    """)
    _clean(proc)
    assert proc.stdout.split() == ["one", "two"]


def test_models_are_context_managers_and_close_from_sync_code(tmp_path: Path) -> None:
    proc = _run(tmp_path, """
        import asyncio, gc, os
        from agentkit.messages import UserMessage
        from agentkit.models import Fallback, OpenAICompatible, Replay
        from agentkit.testing.server import FakeServer, Reply

        srv = FakeServer([Reply(content="x")] * 60).start_in_thread()
        hi = [UserMessage(content="hi")]

        async def main() -> None:
            async with OpenAICompatible("m", base_url=srv.base_url, api_key="k") as m:
                await m.complete(hi)
            async with Fallback([Replay([{"content": "r"}])]) as f:
                await f.complete(hi)

        asyncio.run(main())
        before = len(os.listdir("/proc/self/fd"))
        models = [OpenAICompatible("m", base_url=srv.base_url, api_key="k") for _ in range(50)]

        async def use_all() -> None:
            for m in models:
                await m.complete(hi)

        asyncio.run(use_all())  # the loop is gone: only close() can release the pools now
        for m in models:
            m.close()
        gc.collect()
        import time
        time.sleep(0.5)  # the server, in this process, closes its ends once it sees ours closed
        print(len(os.listdir("/proc/self/fd")) - before)
        srv.stop()
    """)
    _clean(proc)
    assert int(proc.stdout.strip()) <= 2, proc.stdout  # 50 models, no descriptors left open


def test_an_agent_closes_the_model_it_made(tmp_path: Path) -> None:
    script = tmp_path / "s.jsonl"
    script.write_text('{"content": "hello"}\n', encoding="utf-8")
    proc = _run(tmp_path, f"""
        import asyncio
        from agentkit import Agent

        async def main() -> None:
            async with Agent("replay:{script}") as agent:
                print((await agent.run("hi")).answer)
            Agent("replay:{script}").close()

        asyncio.run(main())
    """)
    _clean(proc)
    assert proc.stdout.strip() == "hello"


def test_a_local_sandbox_left_open_is_cleaned_up_at_exit(tmp_path: Path) -> None:
    proc = _run(tmp_path, """
        import asyncio, warnings
        from agentkit.sandboxes import LocalSandbox

        warnings.simplefilter("ignore", RuntimeWarning)  # "not isolated" where bwrap is missing
        sandbox = LocalSandbox()
        print(sandbox.workspace)

        async def main() -> None:
            print((await sandbox.run("echo hi")).output.strip())

        asyncio.run(main())  # and never closed
    """)
    _clean(proc)
    workspace, out = proc.stdout.split()
    assert out == "hi" and not os.path.exists(workspace)  # its temporary workspace is gone
    assert proc.stderr.count("LocalSandbox was not closed") == 1 and "async with LocalSandbox" in proc.stderr


def test_models_close_in_a_plain_with_block(tmp_path: Path) -> None:
    """Sync code writes ``with OpenAICompatible(...) as m:`` (before: no ``__enter__``)."""
    proc = _run(tmp_path, """
        import gc
        from agentkit import Agent
        from agentkit.models import Fallback, OpenAICompatible, Replay
        from agentkit.testing.server import FakeServer, Reply

        srv = FakeServer([Reply(content="one"), Reply(content="two")]).start_in_thread()
        with OpenAICompatible("m", base_url=srv.base_url, api_key="k") as m:
            print(Agent(m).run_sync("a").answer)
            print(Agent(Fallback([m, Replay([])])).run_sync("b").answer)
        assert not m._clients, m._clients
        with Replay([]):
            pass
        gc.collect()
        srv.stop()
    """)
    _clean(proc)
    assert proc.stdout.split() == ["one", "two"]
