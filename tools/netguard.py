"""Address checks for the page fetcher: refuse anything that is not the public internet.

A model choosing URLs must not reach the host's loopback services, the LAN or a cloud metadata
endpoint (169.254.169.254). The check runs after DNS resolution (a public-looking name can point
at 127.0.0.1) on every hop of a redirect chain, and once more when the socket is opened
(``GuardedBackend``), so a name that changes its answer between check and connect (DNS rebinding)
is caught too. An allow-list opens specific hosts or address ranges, e.g. 127.0.0.1 in tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore

from agentkit.errors import ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = ["AddressRefused", "AllowList", "GuardedBackend", "address_problem", "check_url", "resolve"]


class AddressRefused(ToolError):
    """A URL was refused because of its scheme or the addresses it resolves to."""


def _unmap(ip: IPAddress) -> IPAddress:
    """``::ffff:127.0.0.1`` and friends are judged as the IPv4 address they carry."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched (``"loopback"``, ``"private"``, ...), or None if it is public."""
    ip = _unmap(ip)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if not ip.is_global:
        return "non-public"
    return None


class AllowList:
    """Hosts and address ranges the fetcher may reach even though they are not public.

    Entries: an exact host name (``intranet.example``), a wildcard suffix (``*.example`` or
    ``.example``), an IP address or a CIDR range (``10.1.0.0/16``, ``::1``).
    """

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.hosts: set[str] = set()
        self.suffixes: list[str] = []
        self.networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry.startswith("[") and entry.endswith("]"):
                entry = entry[1:-1]
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                self.suffixes.append(entry[1:])
            elif entry.startswith("."):
                self.suffixes.append(entry)
            else:
                self.hosts.add(entry.rstrip("."))

    def __bool__(self) -> bool:
        return bool(self.hosts or self.suffixes or self.networks)

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def allows_ip(self, ip: IPAddress) -> bool:
        cands = {ip, _unmap(ip)}
        return any(c in net for c in cands for net in self.networks if c.version == net.version)


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses ``host`` resolves to (a literal IP resolves to itself)."""
    lit = _literal_ip(host)
    if lit is not None:
        return [lit]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise AddressRefused(f"Could not resolve host {host!r} ({e.strerror}); check the URL.") from e
    out: list[IPAddress] = []
    for _fam, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in out:
            out.append(ip)
    return out


def _refusal(host: str, ip: IPAddress, why: str) -> AddressRefused:
    shown = host if str(ip) == host.strip("[]") else f"{host} ({ip})"
    return AddressRefused(
        f"Refused to fetch {shown}: {why} address. Only public internet addresses can be fetched "
        f"(an operator can open it with fetch_allow / --fetch-allow).", host=host, ip=str(ip), reason=why)


async def check_host(host: str, port: int, allow: AllowList) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses if every one may be reached; raise otherwise."""
    if allow.allows_host(host):
        return await resolve(host, port)
    addrs = await resolve(host, port)
    if not addrs:
        raise AddressRefused(f"Host {host!r} resolved to no address; check the URL.")
    for ip in addrs:
        why = address_problem(ip)
        if why and not allow.allows_ip(ip):
            raise _refusal(host, ip, why)
    return addrs


async def check_url(url: str, allow: AllowList) -> tuple[str, int, list[IPAddress]]:
    """Check a URL's scheme and the addresses its host resolves to; returns (host, port, addrs)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise AddressRefused(f"Malformed URL {url!r}: {e}.") from e
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise AddressRefused(f"Refused to fetch {url!r}: only http:// and https:// URLs can be fetched.")
    host = parts.hostname
    if not host:
        raise AddressRefused(f"URL {url!r} has no host; give a full http(s):// URL.")
    port = port or (443 if scheme == "https" else 80)
    return host, port, await check_host(host, port, allow)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that checks the address again when the socket opens.

    It resolves the name itself and connects to the checked IP, so there is no second lookup
    an attacker's DNS could answer differently. TLS still uses the original host name (SNI and
    certificate checks happen above this layer).
    """

    def __init__(self, allow: AllowList, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow = allow
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addrs = await check_host(host, port, self.allow)
        last: Exception | None = None
        for ip in addrs:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout=timeout,
                                                    local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("Refused: the fetcher does not connect to unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
