"""The HTTP client every model backend uses.

Building an SSL context reads the CA bundle (about 0.1 s of CPU); doing that per client made
hundreds of concurrent runs CPU-bound, so one context is built lazily and shared. Connection
limits are high enough that many concurrent runs on one model keep their connections alive
instead of churning through the pool.
"""

from __future__ import annotations

import functools
import ssl

import httpx

POOL = httpx.Limits(max_connections=512, max_keepalive_connections=256, keepalive_expiry=30.0)


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def make_client(base_url: str, *, timeout_s: float, connect_timeout_s: float,
                transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An ``AsyncClient`` for one model: HTTP/2 for https, the shared SSL context, no redirects."""
    https = base_url.startswith("https://")
    return httpx.AsyncClient(
        http2=https, transport=transport, verify=shared_ssl_context() if https else False,
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), limits=POOL, follow_redirects=False)
