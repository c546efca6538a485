"""The product on a real Redis Cluster: two web processes and two promoters, events on three different primaries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from support.cluster import Cluster, running
from support.failover import open_sockets, try_join
from support.redis_cluster import RedisCluster
from support.redis_server import records
from support.waiting import apoll, until
from support.ws import close_all

from waiting_room.store.keys import EventKeys

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

PER_EVENT = 8


@pytest.fixture(scope="module")
def product(redis_cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("on-cluster"), webs=2, promoters=2, redis_url=redis_cluster.url) as c:
        yield c


@pytest.fixture
def events(redis_cluster: RedisCluster) -> list[str]:
    """Three event ids whose slots sit on three different primaries."""
    return redis_cluster.events_on_distinct_primaries(f"c{uuid4().hex[:6]}")


async def test_three_events_on_three_shards_run_end_to_end(
    product: Cluster, redis_cluster: RedisCluster, events: list[str]
) -> None:
    c = product
    assert len({redis_cluster.owner(EventKeys(e).line).port for e in events}) == 3
    for event in events:
        c.put_event(event, status="paused", rate_per_minute=600)  # one a tick
    tickets = {e: [c.join(e, web=i % 2)["ticket"] for i in range(PER_EVENT)] for e in events}
    clients = {e: await open_sockets(c, tickets[e]) for e in events}
    everyone = [cl for group in clients.values() for cl in group]
    try:
        for event in events:
            assert [cl.ranks()[0] for cl in clients[event]] == list(range(1, PER_EVENT + 1))
            await asyncio.to_thread(c.set_status, event, "open")
        await until(lambda: all(cl.admitted for cl in everyone), "every socket to be admitted", within=40)
        await asyncio.sleep(0.5)  # a second `admitted` would arrive by now
    finally:
        await close_all(everyone)
    for event in events:
        assert [len(cl.of("admitted")) for cl in clients[event]] == [1] * PER_EVENT, "admitted once"
        for cl in clients[event]:
            ranks = cl.ranks()
            assert ranks == sorted(ranks, reverse=True), f"{cl.ticket}: position went up: {ranks}"
        admitted_ms = [records(c.redis, event)[t].admitted_ms for t in tickets[event]]
        assert admitted_ms == sorted(admitted_ms), f"{event}: not admitted in join order"
        for i, cl in enumerate(clients[event]):
            assert cl.admitted is not None
            token = cl.admitted.data["token"]
            assert c.ticket(cl.ticket, web=i % 2)["token"] == token
            first = c.redeem(token)
            assert first.status_code == 200, first.text
            again = c.redeem(token)
            assert (again.status_code, again.json()["error"]["code"]) == (409, "token_used")
        stats = c.stats(event)
        assert (stats["served_total"], stats["waiting"], stats["redeemed"]) == (PER_EVENT, 0, PER_EVENT)


async def test_a_global_notice_reaches_every_event(product: Cluster, events: list[str]) -> None:
    c = product
    for event in events:
        c.put_event(event, status="paused")
    tickets = [c.join(e, web=i % 2)["ticket"] for i, e in enumerate(events * 2)]
    clients = await open_sockets(c, tickets)
    try:
        r = c.admin.post(c.url("/api/admin/notices"), json={"text": "doors open at noon", "level": "info"})
        assert r.status_code == 201, r.text
        await until(lambda: all(cl.of("notice") for cl in clients), "the notice on every socket")
        assert {cl.of("notice")[-1].data["text"] for cl in clients} == {"doors open at noon"}
        # and an event's own notice reaches that event only
        r = c.admin.post(c.url(f"/api/admin/events/{events[0]}/notices"), json={"text": "only here", "level": "info"})
        assert r.status_code == 201, r.text
        mine = [cl for cl, t in zip(clients, tickets, strict=True) if t.startswith(events[0] + ".")]
        await until(lambda: all(cl.of("notice")[-1].data["text"] == "only here" for cl in mine), "the event notice")
        others = [cl for cl in clients if cl not in mine]
        await asyncio.sleep(0.5)
        assert all(cl.of("notice")[-1].data["text"] == "doors open at noon" for cl in others)
    finally:
        await close_all(clients)


async def test_a_primary_killed_mid_run_loses_no_acknowledged_ticket(
    cluster_factory: Callable[..., Cluster], redis_cluster: RedisCluster
) -> None:
    (event,) = redis_cluster.events_on_distinct_primaries(f"k{uuid4().hex[:6]}", count=1)
    c = cluster_factory(webs=2, promoters=2, redis_url=redis_cluster.url, env={"WR_REDIS_MIN_REPLICAS": "1"})
    c.put_event(event, status="paused", rate_per_minute=600)
    acknowledged = [c.join(event, web=i % 2)["ticket"] for i in range(10)]
    clients = await open_sockets(c, acknowledged)
    victim = redis_cluster.owner(EventKeys(event).line)
    try:
        await asyncio.to_thread(c.set_status, event, "open")
        await until(lambda: any(cl.admitted for cl in clients), "admissions to start")
        victim.kill()
        # joins go on: each answers 201 (a replica holds it) or 503, nothing else
        refused_while_alone = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = await asyncio.to_thread(try_join, c, event, len(acknowledged) % 2)
            if status == 201:
                acknowledged.append(body["ticket"])
            moved = redis_cluster.owner(EventKeys(event).line).port != victim.port
            if moved and status == 503:
                refused_while_alone = True  # the promoted replica has no replica: writes wait for one
                break
            await asyncio.sleep(0.1)
        assert refused_while_alone, "writes to a shard without a replica were acknowledged"
        victim.start()  # back, as the replica of the node that took over
        rejoined = await apoll(
            lambda: asyncio.to_thread(lambda: try_join(c, event, 0)[0] == 201),
            "joins to be acknowledged again once the old primary is back as a replica",
            within=30,
            interval=0.2,
        )
        assert rejoined
        for cl in clients:
            if not cl.open:
                await cl.reconnect()
        await until(lambda: all(cl.admitted for cl in clients), "every socket to be admitted", within=60)
    finally:
        await close_all(clients)
        if victim.proc is None:
            victim.start()
        redis_cluster.wait_healthy(60)
    found = records(c.redis, event)
    missing = [t for t in acknowledged if t not in found]
    assert not missing, f"{len(missing)} acknowledged tickets were lost in the failover"
    admitted = [t for t, rec in found.items() if rec.admitted_ms is not None]
    assert int(c.redis.hget(EventKeys(event).stats, "served_total") or 0) == len(admitted)  # nobody twice
    for cl in clients:
        tokens = {m.data["token"] for m in cl.of("admitted")}
        assert len(tokens) == 1, f"{cl.ticket} was admitted more than once: {tokens}"
        for n in range(cl.connection + 1):
            ranks = cl.ranks(n)
            assert ranks == sorted(ranks, reverse=True), f"{cl.ticket}: position went up: {ranks}"
