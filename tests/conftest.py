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
