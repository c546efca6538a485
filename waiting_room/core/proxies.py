"""Who a request comes from when proxies stand in front (WR_TRUSTED_PROXIES).

A peer that is a trusted proxy names the client in `X-Forwarded-For`; each
proxy on the way appends the address it heard from, so the client is the
nearest address, reading from the right, that is not itself a trusted
proxy. Anyone else's header is ignored: it is whatever the caller wrote.

Every join at a sale's opening comes from an address never seen before, so
the check runs for each one; an IPv4 address is tested as an integer
against the trusted networks, not parsed into `ipaddress` objects (which
cost more than the rest of the trust check together).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable


class TrustedProxies:
    __slots__ = ("_v4", "_v6", "everyone")

    def __init__(self, entries: Iterable[str]) -> None:
        """`entries`: addresses or CIDRs as settings.trusted_proxies normalised them, or "*" (every peer)."""
        self.everyone = False
        self._v4: list[tuple[int, int]] = []  # (network, mask) as integers
        self._v6: list[ipaddress.IPv6Network] = []
        for entry in entries:
            if entry == "*":
                self.everyone = True
                continue
            network = ipaddress.ip_network(entry, strict=False)
            if isinstance(network, ipaddress.IPv4Network):
                self._v4.append((int(network.network_address), int(network.netmask)))
            else:
                self._v6.append(network)

    @property
    def anyone(self) -> bool:
        """Whether any peer can be a proxy at all (if not, the header is never even read)."""
        return self.everyone or bool(self._v4 or self._v6)

    def trusts(self, host: str) -> bool:
        if self.everyone:
            return True
        try:
            number = int.from_bytes(socket.inet_pton(socket.AF_INET, host))
        except (OSError, ValueError):  # not a dotted quad (ValueError: it holds a NUL)
            return self._trusts_other(host)
        return any(number & mask == network for network, mask in self._v4)

    def _trusts_other(self, host: str) -> bool:
        if not self._v6:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # a name, a unix socket: never a trusted proxy
            return False
        return any(address in network for network in self._v6)

    def client(self, forwarded_for: list[str]) -> tuple[str, int] | None:
        """The client's (host, port) that a trusted peer's X-Forwarded-For values name; None when they
        name nobody (the peer is then the client)."""
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        if not hops:
            return None
        if not self.everyone:
            for hop in reversed(hops):
                host, port = host_and_port(hop)
                if not self.trusts(host):
                    return (host, port) if host else None
        host, port = host_and_port(hops[0])  # every hop a proxy (or all trusted): the farthest one
        return (host, port) if host else None


def host_and_port(hop: str) -> tuple[str, int]:
    """`1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:5678` or a bare IPv6 address; anything else is a host
    without a port, kept whole so that no odd spelling is normalised into a trusted address."""
    if hop.startswith("["):
        end = hop.find("]")
        host, rest = hop[1:end], hop[end + 1 :]
        if end == -1 or (rest and not rest.startswith(":")):
            return hop, 0
        return host, _port(rest[1:])
    if hop.count(":") == 1:
        host, _, port = hop.partition(":")
        return (host, _port(port)) if _is_port(port) else (hop, 0)
    return hop, 0


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


def _port(text: str) -> int:
    return int(text) if _is_port(text) else 0
