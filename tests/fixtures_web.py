"""Web fixtures: a real HTTP server on 127.0.0.1 (see ``agentkit.testing.web.LocalWebServer``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentkit.testing.web import LocalWebServer


@pytest.fixture
def web_server() -> Iterator[LocalWebServer]:
    """A started ``LocalWebServer``; register pages with ``add_html``/``add_pdf``/``redirect``."""
    with LocalWebServer() as server:
        yield server
