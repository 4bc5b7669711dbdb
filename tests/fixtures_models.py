"""Fixtures for the model layer: fake OpenAI-compatible servers on 127.0.0.1.

``fake_server`` is an async factory (``srv = await fake_server([Reply("hi")])``) whose servers
are closed after the test; ``fake_server_thread`` is the same for sync code and subprocesses
(the server runs in a background thread).
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest

from agentkit.testing.server import FakeServer


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[..., Awaitable[FakeServer]]]:
    servers: list[FakeServer] = []

    async def make(script: list[Any] | None = None, **kw: Any) -> FakeServer:
        srv = FakeServer(script or [], **kw)
        await srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        await srv.aclose()
    for srv in servers:
        srv.check()  # a scripting error fails the test that made it


@pytest.fixture
def fake_server_thread() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def make(script: list[Any] | None = None, **kw: Any) -> FakeServer:
        srv = FakeServer(script or [], **kw).start_in_thread()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()
    for srv in servers:
        srv.check()
