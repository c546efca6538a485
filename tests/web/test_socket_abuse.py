"""WebSocket clients that misbehave, against a real web process: a flood of messages is closed with
1008 while a chatty but polite client is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial

import httpx
import pytest
from support.cluster import Cluster, running
from support.waiting import until
from support.ws import WsClient, close_all

pytestmark = pytest.mark.usefixtures("deadline")

GHOSTS = 2_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("socket-abuse"), webs=1, promoters=1) as made:
        yield made


async def test_a_message_flood_is_closed_with_1008_and_a_polite_client_is_kept(cluster: Cluster) -> None:
    c = cluster
    c.put_event("flood", status="paused")
    flooders = [await c.ws(c.join("flood")["ticket"]).connect() for _ in range(4)]
    polite = await c.ws(c.join("flood")["ticket"]).connect()
    try:
        await asyncio.gather(*(s.wait_for("position") for s in [*flooders, polite]))

        async def flood(socket: WsClient) -> None:
            for _ in range(2_000):  # flat out; the server closes long before the end
                await socket.send("{}")

        flooding = asyncio.gather(*(flood(s) for s in flooders))
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:  # and the process still answers
            probes: list[int] = []
            while not flooding.done():
                probes.append((await http.get(c.url("/healthz"))).status_code)
        await flooding
        assert probes and set(probes) == {200}
        for _ in range(10):  # two a second: within the budget however long it goes on
            await polite.send('{"hello": 1}')
            await asyncio.sleep(0.5)
        assert [await s.closed() for s in flooders] == [1008] * len(flooders)
        assert polite.open
        await asyncio.to_thread(c.set_status, "flood", "open")
        await polite.wait_for("admitted")
    finally:
        await close_all([*flooders, polite])


async def test_sockets_for_events_that_do_not_exist_leave_no_key(cluster: Cluster) -> None:
    c = cluster
    c.put_event("real", status="paused")
    live = await c.ws(c.join("real")["ticket"]).connect()
    await live.wait_for("position")

    def lasting_keys() -> list[str]:
        """Keys that never expire, whatever their name, but the real event's (its line moves meanwhile)."""
        found = c.redis.scan_iter("*", count=1000)
        return sorted(k for k in found if not k.startswith("wr:{real}:") and c.redis.pttl(k) == -1)

    before = lasting_keys()
    ghosts = [c.ws(f"ghost-{i}.{'A' * 24}") for i in range(GHOSTS)]
    try:
        for start in range(0, GHOSTS, 250):
            await asyncio.gather(*(g.connect() for g in ghosts[start : start + 250]))
        assert [await g.closed() for g in ghosts] == [4404] * len(ghosts)

        def conns_keys() -> list[str]:
            return sorted(c.redis.scan_iter("wr:*:conns", count=1000))

        await until(
            lambda: conns_keys() == ["wr:{real}:conns"],
            lambda: f"only the real event's count: {len(conns_keys())} keys",
        )
        assert 0 < c.redis.pttl("wr:{real}:conns") <= 60_000  # and even that one goes if nobody renews it
        # (its count is renewed once the hub is through the ghosts' rooms, each dropped after one pass)
        await until(lambda: c.stats("real")["connections"] == 1, "the real socket counted")
        # the real event's own keys may appear meanwhile (the promoter's rate bucket): no ghost leaves any
        assert [key for key in lasting_keys() if key not in before and "{real}" not in key] == []
    finally:
        await close_all([live, *ghosts])


async def test_sockets_opened_at_once_for_one_ticket_leave_exactly_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Twenty times each: two sockets for one ticket at the same instant on one web process, and on
    two; then eight at once over both. Exactly one survives each time; the others are told 4001."""
    with running(tmp_path_factory.mktemp("claims"), webs=2, promoters=1) as c:
        c.put_event("claims", status="paused")
        trials = [[0, 0]] * 20 + [[0, 1]] * 20 + [[0, 1] * 4]
        survivors = []
        for webs in trials:
            ticket = c.join("claims")["ticket"]
            sockets = [c.ws(ticket, web) for web in webs]
            try:
                await asyncio.gather(*(s.connect() for s in sockets))
                await until(partial(one_left_and_told, sockets), lambda s=sockets: f"one socket left: {codes_of(s)}")
                await asyncio.sleep(0.3)  # a late claim would close the survivor by now
                survivors.append(sum(s.open for s in sockets))
                assert {s.close_code for s in sockets if not s.open} <= {4001}, codes_of(sockets)
            finally:
                await close_all(sockets)
        assert survivors == [1] * len(trials)


def one_left_and_told(sockets: list[WsClient]) -> bool:
    alive = [s for s in sockets if s.open]
    return len(alive) <= 1 and all(s.of("position") for s in alive)


def codes_of(sockets: list[WsClient]) -> list[int | None]:
    return [None if s.open else s.close_code for s in sockets]
