"""Fan-out end to end in-process: hubs on the Redis bus and loader, a real promoter, sockets that record."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis
from support.hub import Harness
from support.joining import join_many
from support.promoting import running
from support.waiting import apoll, until

from waiting_room.core.states import CloseCode, EventStatus
from waiting_room.core.tokens import Signer
from waiting_room.promoter import Promoter
from waiting_room.store.bus import RedisBus
from waiting_room.store.events import Events
from waiting_room.store.keys import Keyspace
from waiting_room.store.loader import RedisLoader
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts
from waiting_room.web.hub import Hub

pytestmark = pytest.mark.usefixtures("deadline")

TICK_MS = 100
ISSUER = "http://waiting-room.test"


@pytest.fixture
async def harness(keyspace: Keyspace, redis_factory: Callable[[], Redis]) -> AsyncIterator[Harness]:
    signer = Signer(Ed25519PrivateKey.generate(), ISSUER)

    def make() -> Hub:
        redis, subscriber = redis_factory(), redis_factory()
        loader = RedisLoader(redis, Scripts.register(redis), keyspace)
        return Hub(loader, RedisBus(redis, subscriber, keyspace), signer, TICK_MS / 1000)

    h = Harness(make)
    yield h
    await h.close()


async def test_positions_start_true_and_never_increase(
    make_promoter: Callable[..., Promoter],
    harness: Harness,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
) -> None:
    await events.put(event_id, {"status": "paused", "rate_per_minute": 1200})
    tickets = await join_many(queue, event_id, 24)
    hubs = [await harness.hub(), await harness.hub()]
    sockets = [(await harness.connect(hubs[i % 2], t))[0] for i, t in enumerate(tickets)]
    await until(lambda: all(s.of("position") for s in sockets), "a position on every socket")
    assert [s.positions()[0] for s in sockets] == list(range(1, len(tickets) + 1))
    assert all(s.of("position")[0]["waiting"] == len(tickets) for s in sockets)

    async with running(make_promoter(redis_factory())):
        await events.put(event_id, {"status": "open"})
        await until(lambda: all(s.of("admitted") for s in sockets), "every socket to be admitted", within=30)
        # a marker published after: whatever the hubs had to send before it has arrived once it has
        await events.post_notice(event_id, "marker", "info")
        await until(lambda: all(s.of("notice") for s in sockets), "the marker on every socket")
    for ticket, socket in zip(tickets, sockets, strict=True):
        positions = [p for p in socket.positions() if p is not None]
        assert len(positions) == len(socket.positions())
        assert positions == sorted(positions, reverse=True), f"{ticket}: position went up: {positions}"
        assert len(socket.of("admitted")) == 1
        assert [m["type"] for m in socket.sent][-2:] == ["admitted", "notice"]
        claims = harness.hubs[0].signer.verify(socket.of("admitted")[0]["token"])
        assert (claims.ticket, claims.event) == (ticket, event_id)
        for message in socket.of("position"):
            # nobody left without admission, so the truth at `served_total` is exactly this
            assert message["position"] >= tickets.index(ticket) + 1 - message["served_total"]


async def test_a_socket_opened_mid_line_starts_at_its_true_position(
    make_promoter: Callable[..., Promoter],
    keyspace: Keyspace,
    harness: Harness,
    redis: Redis,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
) -> None:
    await events.put(event_id, {"status": "open", "rate_per_minute": 600, "abandon_after_seconds": 15})
    tickets = await join_many(queue, event_id, 12)
    k = keyspace.event(event_id)
    async with running(make_promoter(redis_factory())):

        async def three_admitted() -> bool:
            return int(await redis.hget(k.stats, "served_total") or 0) >= 3

        await apoll(three_admitted, "three admissions")
        await events.set_status(event_id, EventStatus.PAUSED)
    removed: list[str] = await redis.zrange(k.line, 2, 2)  # type: ignore[assignment]
    await redis.zrem(k.line, *removed)  # one ahead leaves without admission (as the promoter would remove it)
    hub = await harness.hub()
    waiting: list[str] = await redis.zrange(k.line, 0, -1)  # type: ignore[assignment]
    sockets = [(await harness.connect(hub, t))[0] for t in waiting]
    await until(lambda: all(s.of("position") for s in sockets), "a position on every socket")
    for i, socket in enumerate(sockets):
        assert socket.positions()[0] == i + 1
        assert socket.of("position")[0]["waiting"] == len(waiting)
    admitted = [t for t in tickets if t not in waiting and t not in removed]
    early = [(await harness.connect(hub, t))[0] for t in admitted]
    await until(lambda: all(s.of("admitted") for s in early), "admitted at connect for admitted tickets")
    assert all(s.of("position") == [] for s in early)


async def test_a_newer_socket_replaces_the_older_in_any_process(
    harness: Harness, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    [ticket] = await join_many(queue, event_id, 1)
    one, two = await harness.hub(), await harness.hub()
    first, _ = await harness.connect(one, ticket)
    second, _ = await harness.connect(one, ticket)
    await until(lambda: first.close_code is not None, "the first socket to be replaced")
    assert first.close_code == CloseCode.REPLACED
    third, _ = await harness.connect(two, ticket)
    await until(lambda: second.close_code is not None, "the socket in the other process to be replaced")
    assert second.close_code == CloseCode.REPLACED
    await events.post_notice(event_id, "marker", "info")  # anything published before it has arrived after it
    await until(lambda: bool(third.of("notice")), "the marker")
    assert third.close_code is None
    assert third.positions() == [1]


async def test_unknown_and_finished_tickets_are_closed(
    make_promoter: Callable[..., Promoter],
    harness: Harness,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
) -> None:
    await events.put(event_id, {"status": "paused"})
    tickets = await join_many(queue, event_id, 2)
    hub = await harness.hub()
    unknown, _ = await harness.connect(hub, f"{event_id}.{secrets.token_urlsafe(18)}")
    waiting, _ = await harness.connect(hub, tickets[0])
    await events.put(event_id, {"status": "closed"})
    async with running(make_promoter(redis_factory())):
        await until(lambda: waiting.close_code is not None, "the waiting socket to be closed")
    assert unknown.close_code == CloseCode.UNKNOWN_TICKET
    assert waiting.close_code == CloseCode.NOT_WAITING
    assert waiting.of("state")[-1]["state"] == "closed"
    late, _ = await harness.connect(hub, tickets[1])
    await until(lambda: late.close_code is not None, "the removed ticket's socket to be closed")
    assert late.close_code == CloseCode.NOT_WAITING


async def test_notices_and_state_changes_reach_every_socket(
    harness: Harness, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    tickets = await join_many(queue, event_id, 3)
    hubs = [await harness.hub(), await harness.hub()]
    sockets = [(await harness.connect(hubs[i % 2], t))[0] for i, t in enumerate(tickets)]
    await until(lambda: all(s.of("position") for s in sockets), "a position on every socket")
    notice = await events.post_notice(event_id, "Doors open soon", "info")
    await events.post_notice(None, "For everyone", "warning")
    await events.set_status(event_id, EventStatus.OPEN)
    await until(lambda: all(len(s.of("notice")) == 2 and s.of("state") for s in sockets), "notices and state")
    for socket in sockets:
        first = socket.of("notice")[0]
        assert (first["id"], first["text"], first["level"]) == (notice["id"], "Doors open soon", "info")
        assert socket.of("state")[0]["state"] == "open"


async def test_an_open_socket_keeps_its_ticket_from_abandonment(
    keyspace: Keyspace, harness: Harness, redis: Redis, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "abandon_after_seconds": 15})
    [ticket] = await join_many(queue, event_id, 1)
    hub = await harness.hub()
    await harness.connect(hub, ticket)
    seen = keyspace.event(event_id).seen
    await redis.zadd(seen, {ticket: 1})  # setup: as if not seen for ages

    async def refreshed() -> bool:
        return (await redis.zscore(seen, ticket) or 0) > 1

    await apoll(refreshed, "the hub to mark the open socket's ticket as seen", within=15)


async def test_malformed_bus_messages_are_ignored_and_the_hub_goes_on(
    keyspace: Keyspace, harness: Harness, redis: Redis, queue: Queue, events: Events, event_id: str
) -> None:
    """Another version or another publisher on the channel must not take fan-out down."""
    await events.put(event_id, {"status": "paused"})
    ticket = (await join_many(queue, event_id, 1))[0]
    hub = await harness.hub()
    socket, _ = await harness.connect(hub, ticket)
    await until(lambda: bool(socket.of("position")), "a first position")
    advance = {"type": "advance", "event": event_id}
    junk = [
        "not json",
        "[1, 2]",
        json.dumps({"no": "type"}),
        json.dumps(advance),
        json.dumps({**advance, "served": "x", "waiting": 1, "at": 0}),
        json.dumps({"type": "claim"}),
        json.dumps({"type": "state", "event": event_id, "state": "weird"}),
    ]
    for message in junk:
        await redis.publish(keyspace.bus, message)
    await events.post_notice(event_id, "still here", "info")
    await until(lambda: bool(socket.of("notice")), "a notice after the junk")
    assert socket.of("notice")[0]["text"] == "still here"


async def test_a_short_grace_keeps_connected_holders_and_starts_when_the_socket_closes(
    make_promoter: Callable[..., Promoter],
    harness: Harness,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
) -> None:
    """abandon_after_seconds=2: the holder with a socket open stays however long it waits; the one
    without is removed; and a socket that closes gives its holder the whole grace from that moment."""
    await events.put(event_id, {"status": "paused", "abandon_after_seconds": 2})
    kept, gone = await join_many(queue, event_id, 2)
    hub = await harness.hub()
    socket, conn = await harness.connect(hub, kept)
    await until(lambda: bool(socket.of("position")), "a first position")
    async with running(make_promoter(redis_factory())):
        await asyncio.sleep(4.5)  # more than twice the grace
        assert (await queue.status(gone, touch=False)).state == "removed"  # type: ignore[union-attr]
        assert (await queue.status(kept, touch=False)).state == "waiting"  # type: ignore[union-attr]
        hub.detach(conn)
        left = asyncio.get_running_loop().time()

        async def removed() -> bool:
            view = await queue.status(kept, touch=False)
            return view is not None and view.state == "removed"

        await apoll(removed, "the closed socket's holder to be removed after its grace", within=15)
        assert asyncio.get_running_loop().time() - left >= 2 - 0.5  # not before the grace (a tick of slack)
