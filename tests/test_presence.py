"""Exact positions and abandonment without per-socket reads, across real web processes and a promoter.

Positions come from the bus (what left the line, numbered per event); a holder
is "departed" from its join until its socket connects, and again from when the
socket closes or its web process dies. See core/ranks.py and core/presence.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from support.cluster import Cluster
from support.waiting import until
from support.ws import WsClient, close_all

from waiting_room.core.presence import LAPSE_SECONDS
from waiting_room.store.keys import EventKeys

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

GRACE = 2  # abandon_after_seconds


@pytest.fixture
def event(event_id: str) -> str:
    return event_id


def truth(cluster: Cluster, event: str) -> dict[str, int]:
    line: list[str] = cluster.redis.zrange(EventKeys(event).line, 0, -1)  # type: ignore[assignment]
    return {ticket: rank + 1 for rank, ticket in enumerate(line)}


async def until_exact(cluster: Cluster, event: str, clients: list[WsClient]) -> None:
    """Every socket whose ticket waits shows its true ZRANK + 1 within the contract's 10 s (line at rest)."""
    true = truth(cluster, event)

    def exact() -> bool:
        return all(c.ranks()[-1] == true[c.ticket] for c in clients if c.ticket in true)

    await until(exact, "every pushed position to equal the true one", within=10)


def assert_never_up(clients: list[WsClient]) -> None:
    for c in clients:
        positions = c.ranks()
        assert positions == sorted(positions, reverse=True), f"{c.ticket}: position went up: {positions}"


def state(cluster: Cluster, ticket: str) -> str:
    """The state the scripts wrote, read from Redis: a status poll would count as presence."""
    event = ticket.partition(".")[0]
    return str(json.loads(cluster.redis.hget(EventKeys(event).tickets, ticket) or "{}").get("s"))


async def connect(cluster: Cluster, tickets: list[str], webs: list[int]) -> list[WsClient]:
    clients = [cluster.ws(t, web) for t, web in zip(tickets, webs, strict=True)]
    await asyncio.gather(*(c.connect() for c in clients))
    await until(lambda: all(c.of("position") for c in clients), "a position on every socket")
    return clients


async def test_positions_stay_exact_while_abandoned_tickets_leave_the_middle(
    cluster_factory: Callable[..., Cluster], event: str
) -> None:
    c = cluster_factory(webs=2, promoters=1)
    c.put_event(event, status="paused", rate_per_minute=600, abandon_after_seconds=GRACE)
    tickets = [c.join(event)["ticket"] for _ in range(45)]
    absent = tickets[1::3]  # never connect: abandoned after the grace, from all along the line
    present = [t for t in tickets if t not in absent]
    clients = await connect(c, present, [i % 2 for i in range(len(present))])
    try:
        await until(lambda: len(truth(c, event)) == len(present), "the absent holders to be removed", within=20)
        await until_exact(c, event, clients)
        assert all(state(c, t) == "removed" for t in absent)
        await asyncio.to_thread(c.set_status, event, "open")
        await until(lambda: c.stats(event)["served_total"] >= 10, "ten admissions", within=20)
        await asyncio.to_thread(c.set_status, event, "paused")
        await until_exact(c, event, clients)
        assert_never_up(clients)
        assert all(len(cl.of("admitted")) == 1 for cl in clients if cl.ticket not in truth(c, event))
    finally:
        await close_all(clients)


async def test_a_connected_holder_stays_and_one_whose_socket_closed_goes(
    cluster_factory: Callable[..., Cluster], event: str
) -> None:
    c = cluster_factory(webs=1, promoters=1)
    c.put_event(event, status="paused", abandon_after_seconds=GRACE)
    kept, closing, never = (c.join(event)["ticket"] for _ in range(3))
    clients = await connect(c, [kept, closing], [0, 0])
    try:
        await clients[1].close()
        await until(lambda: state(c, closing) == "removed", "the holder whose socket closed to be removed")
        await asyncio.sleep(3 * GRACE)  # three graces with the socket open
        assert state(c, never) == "removed"
        assert state(c, kept) == "waiting"
        assert clients[0].open
    finally:
        await close_all(clients)


async def test_holders_of_a_killed_web_process_depart_unless_they_reconnect(
    cluster_factory: Callable[..., Cluster], event: str
) -> None:
    c = cluster_factory(webs=2, promoters=1)
    c.put_event(event, status="paused", abandon_after_seconds=GRACE)
    tickets = [c.join(event)["ticket"] for _ in range(6)]
    clients = await connect(c, tickets, [0] * len(tickets))
    back, lost = clients[:3], clients[3:]
    try:
        c.kill_web(0)
        await until(lambda: not any(cl.open for cl in clients), "the sockets to drop")
        for cl in back:
            cl.url = cl.url.replace(str(c.ports[0]), str(c.ports[1]))
        await asyncio.gather(*(cl.reconnect() for cl in back))
        await until(lambda: all(cl.of("position", 1) for cl in back), "a position on every reconnected socket")
        await until(
            lambda: all(state(c, cl.ticket) == "removed" for cl in lost),
            "the holders that did not come back to be removed",
            within=LAPSE_SECONDS + 4 * GRACE + 10,
        )
        await asyncio.sleep(3 * GRACE)
        assert [state(c, cl.ticket) for cl in back] == ["waiting"] * 3
        await until_exact(c, event, back)
        assert_never_up(back)
    finally:
        await close_all(clients)
