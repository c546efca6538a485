"""Which client a request counts against, for per-client limits.

The address is the real client's (uvicorn takes it from X-Forwarded-For only when the peer is one of
WR_TRUSTED_PROXIES). One IPv4 address is one client; an IPv6 client is its /64, the block one
subscriber is given, since a single machine can pick any address inside it.
"""

from __future__ import annotations

import ipaddress
import re
import socket

MAX_KEY = 64
_UNSAFE = re.compile(r"[^0-9A-Za-z.:_-]")


def client_key(host: str | None) -> str:
    if not host:
        return "unknown"
    if _canonical_ipv4(host):  # the common case, in C: ipaddress would parse it in Python
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a unix socket path, a name from a proxy: kept, but short and plain
        return _UNSAFE.sub("_", host)[:MAX_KEY] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _canonical_ipv4(host: str) -> bool:
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host)) == host
    except (OSError, ValueError):  # not a dotted quad (ValueError: it holds a NUL)
        return False
