"""Which client a trusted proxy names: the nearest untrusted hop; odd spellings are never trusted."""

from __future__ import annotations

import pytest

from waiting_room.core.proxies import TrustedProxies, host_and_port


@pytest.mark.parametrize(
    ("entries", "host", "trusted"),
    [
        (["10.0.0.0/8"], "10.200.3.4", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        (["127.0.0.1"], "127.0.0.1", True),
        (["127.0.0.1"], "127.0.0.2", False),
        (["2001:db8::/32"], "2001:db8::9", True),
        (["2001:db8::/32"], "2001:db9::9", False),
        (["127.0.0.1"], "::1", False),
        (["127.0.0.1"], "localhost", False),  # a name is never a trusted proxy
        (["127.0.0.1"], "127.0.0.1\x00", False),
        (["127.0.0.1"], "0127.0.0.1", False),  # not how anyone writes the proxy's address
        (["*"], "anything", True),
        ([], "127.0.0.1", False),
    ],
)
def test_trust(entries: list[str], host: str, trusted: bool) -> None:
    assert TrustedProxies(entries).trusts(host) is trusted


def test_nobody_trusted_means_the_header_is_never_read() -> None:
    assert not TrustedProxies([]).anyone
    assert TrustedProxies(["::1"]).anyone and TrustedProxies(["*"]).anyone


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        (["203.0.113.9"], ("203.0.113.9", 0)),
        (["198.51.100.1, 203.0.113.9"], ("203.0.113.9", 0)),
        (["198.51.100.1, 10.0.0.5"], ("198.51.100.1", 0)),  # past a proxy of ours
        (["198.51.100.1", "10.0.0.5"], ("198.51.100.1", 0)),  # the header given twice reads as one list
        (["10.0.0.7, 10.0.0.5"], ("10.0.0.7", 0)),  # every hop a proxy: the farthest
        (["203.0.113.9:4711"], ("203.0.113.9", 4711)),
        (["[2001:db8::7]:4711"], ("2001:db8::7", 4711)),
        (["2001:db8::7"], ("2001:db8::7", 0)),
        ([""], None),
        (["203.0.113.9, "], None),  # the nearest hop is empty: nobody named, the peer stands
        ([], None),
    ],
)
def test_the_client_is_the_nearest_untrusted_hop(forwarded_for: list[str], client: tuple[str, int] | None) -> None:
    assert TrustedProxies(["10.0.0.0/8"]).client(forwarded_for) == client


@pytest.mark.parametrize(
    ("hop", "parsed"),
    [
        ("1.2.3.4", ("1.2.3.4", 0)),
        ("1.2.3.4:80", ("1.2.3.4", 80)),
        ("1.2.3.4:http", ("1.2.3.4:http", 0)),
        ("1.2.3.4:²", ("1.2.3.4:²", 0)),  # a digit to str.isdigit, not to int()
        ("1.2.3.4:" + "9" * 5000, ("1.2.3.4:" + "9" * 5000, 0)),  # longer than int() parses
        ("[::1]", ("::1", 0)),
        ("[::1]:80", ("::1", 80)),
        ("[::1]x", ("[::1]x", 0)),
        ("[::1", ("[::1", 0)),
        ("[::1]:x", ("::1", 0)),
    ],
)
def test_host_and_port(hop: str, parsed: tuple[str, int]) -> None:
    assert host_and_port(hop) == parsed
