"""Fan-out end to end in-process: hubs on the Redis bus and loader, a real promoter, sockets that record."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis
from support.hub import Harness, RecordingSocket
from support.joining import join_many
from support.promoting import running
from support.waiting import apoll, until

from waiting_room import promoter as promoter_module
from waiting_room.core import messages
from waiting_room.core.states import CloseCode, EventStatus
from waiting_room.core.tokens import Signer
from waiting_room.promoter import Promoter
from waiting_room.store.bus import RedisBus, Resync
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys, Keyspace
from waiting_room.store.loader import RedisLoader
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts
from waiting_room.web.hub import Hub

pytestmark = pytest.mark.usefixtures("deadline")

TICK_MS = 100
ISSUER = "http://waiting-room.test"


class LossyBus(RedisBus):
    """The Redis bus with messages lost on the way to the hub: those `drop` says (a test double)."""

    def __init__(
        self, redis: Redis, subscriber: Redis, keyspace: Keyspace, drop: Callable[[messages.BusMessage], bool]
    ) -> None:
        super().__init__(redis, subscriber, keyspace)
        self.drop = drop

    def start(self, deliver: Callable[[messages.BusMessage], None], resync: Resync) -> None:
        super().start(lambda message: None if self.drop(message) else deliver(message), resync)


class FanoutHarness(Harness):
    drop: Callable[[messages.BusMessage], bool] = staticmethod(lambda message: False)  # type: ignore[assignment]


@pytest.fixture
async def harness(keyspace: Keyspace, redis_factory: Callable[[], Redis]) -> AsyncIterator[FanoutHarness]:
    signer = Signer(Ed25519PrivateKey.generate(), ISSUER)

    def make() -> Hub:
        redis, subscriber = redis_factory(), redis_factory()
        loader = RedisLoader(redis, Scripts.register(redis), keyspace)
        bus = LossyBus(redis, subscriber, keyspace, lambda message: h.drop(message))
        return Hub(loader, bus, signer, TICK_MS / 1000)

    h = FanoutHarness(make)
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


async def test_an_open_socket_holds_its_ticket_and_a_closed_one_departs_it(
    keyspace: Keyspace, harness: Harness, redis: Redis, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "abandon_after_seconds": 15})
    [ticket] = await join_many(queue, event_id, 1)
    k = keyspace.event(event_id)
    assert await redis.zscore(k.departed, ticket) is not None, "departed from its join until it connects"
    hub = await harness.hub()
    _, conn = await harness.connect(hub, ticket)
    assert await redis.zscore(k.departed, ticket) is None
    assert await redis.hget(k.holders, ticket) == hub.id
    hub.detach(conn)

    async def departed() -> bool:
        return await redis.zscore(k.departed, ticket) is not None

    await apoll(departed, "the closed socket's ticket to depart")
    assert await redis.hget(k.holders, ticket) is None


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


async def true_positions(redis: Redis, k: EventKeys) -> dict[str, int]:
    line: list[str] = await redis.zrange(k.line, 0, -1)  # type: ignore[assignment]
    return {ticket: rank + 1 for rank, ticket in enumerate(line)}


async def until_exact(sockets: dict[str, RecordingSocket], redis: Redis, k: EventKeys) -> None:
    """Every socket whose ticket still waits shows its true ZRANK + 1, within the contract's 10 s."""
    truth = await true_positions(redis, k)

    def exact() -> bool:
        return all(s.positions()[-1] == truth[t] for t, s in sockets.items() if t in truth)

    await until(exact, f"every position to equal the truth {truth}", within=10)


def assert_never_up(sockets: dict[str, RecordingSocket]) -> None:
    for ticket, socket in sockets.items():
        positions = socket.positions()
        assert positions == sorted(positions, reverse=True), f"{ticket}: position went up: {positions}"


async def test_a_closed_line_taken_from_the_head_keeps_every_position_exact(
    keyspace: Keyspace,
    make_promoter: Callable[..., Promoter],
    harness: Harness,
    redis: Redis,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(promoter_module, "BATCH", 3)  # a few removed a tick, so positions move in steps
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused"})
    tickets = await join_many(queue, event_id, 14)
    hub = await harness.hub()
    sockets = {t: (await harness.connect(hub, t))[0] for t in tickets}
    await until_exact(sockets, redis, k)
    await events.put(event_id, {"status": "closed"})
    promoter = make_promoter(redis_factory(), tick_ms=TICK_MS)
    while await redis.zcard(k.line) > 0:
        await promoter.tick()
        await until_exact(sockets, redis, k)
    await until(lambda: all(s.close_code is not None for s in sockets.values()), "every socket closed")
    assert {s.close_code for s in sockets.values()} == {CloseCode.NOT_WAITING}
    assert_never_up(sockets)
    assert [len(s.positions()) for s in sockets.values()][-1] == 5, "moved with each step, read once"


async def test_a_process_that_misses_bus_messages_heals_its_positions(
    keyspace: Keyspace,
    make_promoter: Callable[..., Promoter],
    harness: FanoutHarness,
    redis: Redis,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
) -> None:
    """Admissions from the head and abandoned tickets from the middle, with every other advance lost on
    the way to this process (the last one included): positions stay at or above the truth and equal it
    again within 10 s, never going up."""
    await events.put(event_id, {"status": "paused", "rate_per_minute": 1200, "abandon_after_seconds": 600})
    k = keyspace.event(event_id)
    tickets = await join_many(queue, event_id, 60)
    held, absent = tickets[::2], tickets[1::2]  # the absent ones are abandoned, a few at a time
    lost: list[int] = []
    last_step = 11
    step = 0

    def drop(message: messages.BusMessage) -> bool:
        ours = isinstance(message, messages.Advance) and message.event == event_id
        if ours and (message.seq % 2 == 0 or step == last_step):  # type: ignore[union-attr]
            lost.append(message.seq)  # type: ignore[union-attr]
            return True
        return False

    harness.drop = drop
    hub = await harness.hub()
    sockets = {t: (await harness.connect(hub, t))[0] for t in held}
    await until_exact(sockets, redis, k)
    promoter = make_promoter(redis_factory(), tick_ms=TICK_MS)
    await events.put(event_id, {"status": "open"})
    seconds, _ = await redis.time()
    for step in range(last_step + 1):
        if step % 2 == 0:  # setup: the grace of two absent holders (from the back) ran out long ago
            gone = absent[::-1][step : step + 2]
            await redis.zadd(k.departed, {t: (seconds - 3600) * 1000 for t in gone})
        await asyncio.sleep(TICK_MS / 1000)
        await promoter.tick()
        truth = await true_positions(redis, k)
        for ticket, socket in sockets.items():
            if ticket in truth and socket.positions():
                assert socket.positions()[-1] >= truth[ticket], "never below the truth"
    await events.put(event_id, {"status": "paused"})
    await promoter.tick()
    assert len(lost) >= 6 and int(await redis.get(k.advances) or 0) == lost[-1], "the last message was lost too"
    assert int(await redis.hget(k.stats, "removed") or 0) == 12
    await until_exact(sockets, redis, k)
    assert_never_up(sockets)
