"""The product behind Sentinel: the primary SIGKILLed mid-run, every process follows the new one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.cluster import Cluster
from support.failover import open_sockets, try_join
from support.redis_server import records
from support.sentinel import SentinelGroup
from support.waiting import apoll, until

from waiting_room.store.keys import EventKeys

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary with two replicas (one is left to confirm writes after a failover) and a sentinel."""
    group = SentinelGroup(tmp_path / "sentinel", replicas=2).start()
    yield group
    group.close()


async def test_processes_follow_sentinel_to_the_new_primary(
    sentinel: SentinelGroup, cluster_factory: Callable[..., Cluster], event_id: str
) -> None:
    # (sentinel first: fixtures end in reverse, so the processes stop while Redis is still there)
    event = event_id
    c = cluster_factory(webs=2, promoters=1, redis_url=sentinel.url, env={"WR_REDIS_MIN_REPLICAS": "1"})
    c.put_event(event, status="paused", rate_per_minute=300)
    acknowledged = [c.join(event, web=i % 2)["ticket"] for i in range(8)]
    clients = await open_sockets(c, acknowledged)
    old = sentinel.primary_port()
    assert old is not None
    try:
        await asyncio.to_thread(c.set_status, event, "open")
        await until(lambda: any(cl.admitted for cl in clients), "admissions to start")
        sentinel.node(old).kill()

        async def new_primary_takes_joins() -> bool:
            status, body = await asyncio.to_thread(try_join, c, event, len(acknowledged) % 2)
            if status == 201:
                acknowledged.append(body["ticket"])
            return status == 201 and sentinel.primary_port() not in (None, old)

        await apoll(new_primary_takes_joins, "joins acknowledged by the new primary", within=40, interval=0.2)
        for cl in clients:
            if not cl.open:
                await cl.reconnect()
        await until(lambda: all(cl.admitted for cl in clients), "every socket to be admitted", within=40)
    finally:
        await asyncio.gather(*(cl.close() for cl in clients), return_exceptions=True)
    found = records(c.redis, event)
    missing = [t for t in acknowledged if t not in found]
    assert not missing, f"{len(missing)} acknowledged tickets were lost in the failover"
    admitted = [t for t, rec in found.items() if rec.admitted_ms is not None]
    assert int(c.redis.hget(EventKeys(event).stats, "served_total") or 0) == len(admitted)  # nobody twice
    for cl in clients:
        assert len({m.data["token"] for m in cl.of("admitted")}) == 1, f"{cl.ticket} admitted more than once"
