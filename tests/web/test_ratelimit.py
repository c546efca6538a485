"""The per-client join limit: a bucket per address, and a bounded table that forgets the longest idle."""

from __future__ import annotations

import pytest

from waiting_room.web.ratelimit import RateLimiter, retry_after_header


def test_a_client_gets_its_burst_then_its_rate() -> None:
    limiter = RateLimiter(per_second=2, burst=3)
    assert [limiter.check("a", 0.0) for _ in range(3)] == [None, None, None]
    assert limiter.check("a", 0.0) == pytest.approx(0.5)
    assert limiter.check("b", 0.0) is None, "another address has its own bucket"
    assert limiter.check("a", 0.5) is None, "half a second refills one"
    assert retry_after_header(0.2) == "1" and retry_after_header(2.1) == "3"


def test_a_full_table_forgets_the_least_recently_seen_client_only() -> None:
    limiter = RateLimiter(per_second=1, burst=2, max_clients=3)
    for client in ("a", "b", "c"):
        limiter.check(client, 0.0)
        limiter.check(client, 0.0)  # each has spent its burst
    assert limiter.check("a", 0.0) is not None  # seen again: now the most recent
    assert limiter.check("d", 0.0) is None  # a fourth: "b", the least recently seen, is forgotten
    assert len(limiter) == 3
    assert limiter.check("a", 0.0) is not None and limiter.check("c", 0.0) is not None, "kept, still empty"
    assert limiter.check("b", 0.0) is None, "forgotten: back with a full bucket"
