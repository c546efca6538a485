"""After a Redis restart, the connections a web process pooled before it are dead: each must be retried
on a fresh connection, not answered 503. Counted over real processes and a real redis-server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
import pytest
from support.cluster import Cluster
from support.waiting import poll

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

WARM = 48  # concurrent requests before the restart: that many pooled connections go stale
POLLS = 300
JOINS = 100


async def _answers(c: Cluster, requests: list[tuple[str, str]], concurrency: int) -> Counter[int]:
    """Status codes of `requests` (method, path), `concurrency` at a time, each from a new visitor."""
    gate = asyncio.Semaphore(concurrency)
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(trust_env=False, timeout=30, cookies=no_cookies) as http:

        async def one(method: str, path: str) -> int:
            async with gate:
                return (await http.request(method, c.url(path))).status_code

        return Counter(await asyncio.gather(*(one(m, p) for m, p in requests)))


async def test_stale_pooled_connections_are_retried_after_a_restart(
    cluster_factory: Callable[..., Cluster], event_id: str
) -> None:
    c = cluster_factory(webs=1, promoters=1)
    c.put_event(event_id, status="paused")
    tickets = [c.join(event_id)["ticket"] for _ in range(10)]
    polls = [("GET", f"/api/tickets/{tickets[i % len(tickets)]}") for i in range(POLLS)]
    warm = await _answers(c, polls[: WARM * 4], WARM)
    assert warm == Counter({200: WARM * 4})

    c.redis_server.stop()
    c.redis_server.start()  # same port, same append-only file
    poll(lambda: c.redis.ping(), "Redis to answer again")

    joins = [("POST", f"/api/events/{event_id}/tickets")] * JOINS
    after = await _answers(c, polls + joins, WARM)
    assert after == Counter({200: POLLS, 201: JOINS}), f"answers after the restart: {dict(after)}"
    assert c.stats(event_id)["waiting"] == len(tickets) + JOINS
