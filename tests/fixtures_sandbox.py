"""Sandbox fixtures shared by every area's tests.

- ``local_sandbox``: a started ``LocalSandbox`` on a fresh temporary workspace.
- ``docker_sandbox``: a started ``DockerSandbox`` (image ``agentkit-sandbox:latest``) with a fresh,
  empty workspace. One container is shared per test module (starting one per test would make the
  suite slow); each test gets its own shell session and its own workspace directory in it.
- ``any_sandbox``: parametrized over both.

Docker tests skip with a reason when the engine or the image is missing, except when
``AGENTKIT_REQUIRE_DOCKER=1`` (CI), where they fail.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

SANDBOX_IMAGE = os.environ.get("AGENTKIT_SANDBOX_IMAGE", "agentkit-sandbox:latest")
_counter = itertools.count(1)


def docker_unavailable_reason(image: str = SANDBOX_IMAGE) -> str | None:
    """Why Docker tests cannot run here, or None when the engine answers and the image exists."""
    from agentkit.sandboxes.docker import docker_unavailable_reason as reason

    return reason(image)


def require_docker(image: str = SANDBOX_IMAGE) -> None:
    """Skip (or, under AGENTKIT_REQUIRE_DOCKER=1, fail) when Docker cannot be used."""
    reason = docker_unavailable_reason(image)
    if reason is None:
        return
    if os.environ.get("AGENTKIT_REQUIRE_DOCKER") == "1":
        pytest.fail(f"Docker is required (AGENTKIT_REQUIRE_DOCKER=1) but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sandbox_container() -> Iterator[str]:
    """One running sandbox container for a test module; yields its id, removed afterwards."""
    require_docker()
    from agentkit.sandboxes.docker import create_container, remove_container

    cid = create_container(SANDBOX_IMAGE)
    try:
        yield cid
    finally:
        remove_container(cid)


@pytest.fixture
async def local_sandbox(tmp_path: Any) -> AsyncIterator[Any]:
    from agentkit.sandboxes import LocalSandbox

    ws = tmp_path / "workspace"
    ws.mkdir()
    sb = LocalSandbox(workspace=ws)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.close()


@pytest.fixture
async def docker_sandbox(sandbox_container: str) -> AsyncIterator[Any]:
    from agentkit.sandboxes.docker import DockerSandbox

    sb = DockerSandbox(container=sandbox_container, workdir=f"/workspace/t{next(_counter)}")
    await sb.start()
    try:
        yield sb
    finally:
        await sb.close()


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def any_sandbox(request: pytest.FixtureRequest) -> Any:
    """Each sandbox kind in turn (the docker one marked ``docker``)."""
    name = "local_sandbox" if request.param == "local" else "docker_sandbox"
    return request.getfixturevalue(name)
