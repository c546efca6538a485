"""Which client a join counts against."""

from __future__ import annotations

import pytest

from waiting_room.core.clients import client_key


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # the same subscriber's block
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::1", "::/64"),
        (None, "unknown"),
        ("", "unknown"),
        ("/run/wr.sock", "_run_wr.sock"),
        ("x" * 500, "x" * 64),
        ("a{b}c\n", "a_b_c_"),  # never a hash tag or a line break in a key name
        ("0.0.0.0", "0.0.0.0"),
        ("203.0.113.007", "203.0.113.007"),  # not canonical, so not an address: kept as a plain name
        ("203.0.113.7\x00", "203.0.113.7_"),
    ],
)
def test_client_key(host: str | None, key: str) -> None:
    assert client_key(host) == key
