"""Shared test set-up. Fixtures live in ``tests/fixtures_*.py`` (one file per area) and are
loaded here as plugins, so each area can add fixtures without touching this file."""

from __future__ import annotations

import pathlib
import socket

import pytest

_HERE = pathlib.Path(__file__).parent
pytest_plugins = sorted(f"tests.{p.stem}" for p in _HERE.glob("fixtures_*.py"))


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any TCP connection that is not to loopback: tests must never reach the network."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("::1", "localhost", "::ffff:127.0.0.1")):
                raise ConnectionRefusedError(f"test tried to reach {host}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _own_settings_and_runs(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The user's agentkit config, AGENTKIT_* defaults and runs folder stay out of the tests (and the
    tests' runs out of the user's folder); subprocesses inherit this environment."""
    from agentkit.config import SETTINGS, env_var

    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for key in SETTINGS:
        monkeypatch.delenv(env_var(key), raising=False)
