"""The promoter against a real redis-server: FIFO, rate, capacity, expiry, pre-queue, removal, leadership."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from support.joining import join_many, uid
from support.promoting import BusRecorder, max_in_window, tick_until, ticks

from waiting_room.core.states import TicketState
from waiting_room.core.tickets import TicketRecord
from waiting_room.promoter import Promoter, lease_ms
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys, Keyspace
from waiting_room.store.queue import Queue

pytestmark = pytest.mark.usefixtures("deadline")

TICK_MS = 100


async def served(redis: Redis, k: EventKeys) -> int:
    return int(await redis.hget(k.stats, "served_total") or 0)


async def state_of(queue: Queue, ticket: str) -> TicketState:
    view = await queue.status(ticket, touch=False)
    assert view is not None
    return view.state


async def admission_times(redis: Redis, k: EventKeys) -> dict[str, int]:
    raw: dict[str, str] = await redis.hgetall(k.tickets)  # type: ignore[assignment]
    found = {t: TicketRecord.decode(r).admitted_ms for t, r in raw.items()}
    return {t: a for t, a in found.items() if a is not None}


async def test_admission_is_fifo_and_never_while_paused(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "rate_per_minute": 1200})  # two a tick
    tickets = await join_many(queue, event_id, 12)
    async with BusRecorder(redis, keyspace.bus) as bus:
        await ticks(promoter, 5)
        assert await served(redis, keyspace.event(event_id)) == 0
        assert all([await state_of(queue, t) is TicketState.WAITING for t in tickets])
        await events.put(event_id, {"status": "open"})

        async def all_admitted() -> bool:
            return await served(redis, keyspace.event(event_id)) == len(tickets)

        await tick_until(promoter, all_admitted, "every ticket to be admitted")
        await bus.wait_for(lambda: len(bus.admitted(event_id)) == len(tickets), "every admission on the bus")
    assert bus.admitted(event_id) == tickets
    assert max(len(batch) for batch in bus.batches(event_id)) <= 2
    assert [await state_of(queue, t) for t in tickets] == [TicketState.ADMITTED] * len(tickets)
    assert await redis.zcard(keyspace.event(event_id).line) == 0


async def test_capacity_is_never_exceeded_and_is_freed_by_release_and_expiry(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(
        event_id,
        {"status": "open", "rate_per_minute": 60000, "max_active": 3, "token_ttl_seconds": 5, "session_ttl_seconds": 5},
    )
    tickets = await join_many(queue, event_id, 8)
    k = keyspace.event(event_id)

    async def within_capacity() -> None:
        holding = await redis.zcard(k.pending) + await redis.zcard(k.active)
        assert holding <= 3, f"{holding} tickets hold capacity, max_active is 3"

    def served_at_least(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await served(redis, keyspace.event(event_id)) >= n

        return check

    await tick_until(promoter, served_at_least(3), "three admissions", after_each=within_capacity)
    for _ in range(5):
        await ticks(promoter, 1)
        await within_capacity()
    assert await served(redis, keyspace.event(event_id)) == 3

    views = [await queue.status(t) for t in tickets[:3]]
    claims = [v.claims for v in views if v is not None and v.claims is not None]
    assert len(claims) == 3
    await queue.redeem(claims[0])
    await queue.redeem(claims[1])
    await ticks(promoter, 3)
    assert await served(redis, keyspace.event(event_id)) == 3, "a redeemed session still holds capacity"
    assert await queue.release(tickets[0])
    await tick_until(promoter, served_at_least(4), "an admission after a release", after_each=within_capacity)
    await ticks(promoter, 3)
    await within_capacity()
    assert await served(redis, keyspace.event(event_id)) == 4
    assert await state_of(queue, tickets[3]) is TicketState.ADMITTED

    # the session of tickets[1] and the tokens of tickets[2], [3] run out: three places free up
    await tick_until(promoter, served_at_least(7), "admissions after expiries", after_each=within_capacity)
    assert await state_of(queue, tickets[2]) is TicketState.EXPIRED
    assert await state_of(queue, tickets[1]) is TicketState.REDEEMED
    assert [await state_of(queue, t) for t in tickets[4:7]] == [TicketState.ADMITTED] * 3
    assert await state_of(queue, tickets[7]) is TicketState.WAITING
    assert int(await redis.hget(k.stats, "expired") or 0) >= 1


async def test_pre_queue_tickets_wait_for_opening_then_go_first(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    opens_at = time.time() + 2
    await events.put(event_id, {"opens_at": opens_at, "rate_per_minute": 1200})
    early = []
    for _ in range(20):
        view, _ = await queue.join(event_id, uid())
        assert (view.state, view.position, view.opens_at) == (TicketState.PRE_QUEUE, None, opens_at)
        early.append(view.ticket)
    async with BusRecorder(redis, keyspace.bus) as bus:
        while time.time() < opens_at - 0.3:
            await ticks(promoter, 1)
        assert await served(redis, keyspace.event(event_id)) == 0, "admitted before opens_at"
        await asyncio.sleep(max(0.0, opens_at + 0.05 - time.time()))
        later = []
        for _ in range(3):
            view, _ = await queue.join(event_id, uid())
            assert view.state is TicketState.WAITING
            later.append(view.ticket)
        assert view.position == len(early) + len(later)
        status = await queue.status(early[0])
        assert status is not None and status.state is TicketState.WAITING and status.position is not None

        async def all_admitted() -> bool:
            return await served(redis, keyspace.event(event_id)) == len(early) + len(later)

        await tick_until(promoter, all_admitted, "every ticket to be admitted")
        await bus.wait_for(lambda: len(bus.admitted(event_id)) == len(early) + len(later), "every admission")
    order = bus.admitted(event_id)
    assert sorted(order[: len(early)]) == sorted(early)
    assert order[: len(early)] != early, "pre-queue tickets went in join order, not shuffled"  # p = 1/20!
    assert order[len(early) :] == later


async def test_abandoned_tickets_are_removed_unless_seen(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "abandon_after_seconds": 15})
    gone, polled, kept = await join_many(queue, event_id, 3)
    k = keyspace.event(event_id)
    seconds, _ = await redis.time()
    long_ago = (seconds - 20) * 1000
    await redis.zadd(k.departed, {gone: long_ago, polled: long_ago})  # setup: not seen for 20 s
    await queue.status(polled)  # ...but this one's holder polls now
    await ticks(promoter, 2)
    assert await state_of(queue, gone) is TicketState.REMOVED
    assert await state_of(queue, polled) is TicketState.WAITING
    view = await queue.status(kept)
    assert view is not None and (view.state, view.position, view.waiting) == (TicketState.WAITING, 2, 2)
    assert await redis.hget(k.stats, "removed") == "1"
    await queue.status(gone)  # a removed ticket's status poll does not bring it back
    await ticks(promoter, 1)
    assert await redis.zscore(k.departed, gone) is None
    assert await redis.zrank(k.line, gone) is None


async def test_closing_removes_every_waiting_ticket(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    tickets = await join_many(queue, event_id, 4)
    await events.put(event_id, {"status": "closed"})
    await ticks(promoter, 2)
    assert [await state_of(queue, t) for t in tickets] == [TicketState.REMOVED] * 4
    k = keyspace.event(event_id)
    assert await redis.zcard(k.line) == 0
    assert await redis.zcard(k.departed) == 0
    assert await served(redis, keyspace.event(event_id)) == 0


async def test_two_promoters_admit_each_ticket_once_within_the_rate(
    make_promoter: Callable[..., Promoter],
    keyspace: Keyspace,
    redis: Redis,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
) -> None:
    rate = 1200  # 20 a second, two a tick
    await events.put(event_id, {"status": "paused", "rate_per_minute": rate})
    tickets = await join_many(queue, event_id, 60)
    promoters = [make_promoter(redis_factory(), owner) for owner in ("promoter-a", "promoter-b")]
    await events.put(event_id, {"status": "open"})
    admitted_by = {p.owner: 0 for p in promoters}
    async with BusRecorder(redis, keyspace.bus) as bus:
        while await served(redis, keyspace.event(event_id)) < len(tickets):
            rounds = await asyncio.gather(*(p.tick() for p in promoters))
            for p, results in zip(promoters, rounds, strict=True):
                admitted_by[p.owner] += sum(r.admitted for r in results if r.event == event_id)
            leaders = [p.owner for p in promoters if event_id in p.leading]
            assert len(leaders) == 1, f"leaders of {event_id}: {leaders}"
            assert await redis.get(keyspace.event(event_id).lease) == leaders[0]
            await asyncio.sleep(TICK_MS / 1000)
        await bus.wait_for(lambda: len(bus.admitted(event_id)) >= len(tickets), "every admission on the bus")
    assert sorted(bus.admitted(event_id)) == sorted(tickets)
    assert bus.admitted(event_id) == tickets
    assert sum(admitted_by.values()) == len(tickets)
    assert sorted(admitted_by.values())[0] == 0, f"both promoters admitted: {admitted_by}"
    times = list((await admission_times(redis, keyspace.event(event_id))).values())
    assert len(times) == len(tickets)
    share = rate / 60 * TICK_MS / 1000
    assert max_in_window(times, 1000) <= rate / 60 + share


async def test_leadership_lapses_and_the_standby_takes_over(
    make_promoter: Callable[..., Promoter],
    keyspace: Keyspace,
    redis: Redis,
    redis_factory: Callable[[], Redis],
    queue: Queue,
    events: Events,
    event_id: str,
) -> None:
    rate = 1200
    await events.put(event_id, {"status": "open", "rate_per_minute": rate})
    tickets = await join_many(queue, event_id, 30)
    a, b = make_promoter(redis_factory(), "promoter-a"), make_promoter(redis_factory(), "promoter-b")
    for _ in range(5):
        await a.tick()
        await b.tick()
        await asyncio.sleep(TICK_MS / 1000)
    assert a.leading == [event_id] and b.leading == []
    lease = keyspace.event(event_id).lease
    assert 0 < await redis.pttl(lease) <= 3000  # the contract: a lease lapses within 3 s
    assert lease_ms(TICK_MS) <= 3000 and lease_ms(10_000) <= 3000
    before = await served(redis, keyspace.event(event_id))
    assert before > 0

    # `a` stops ticking (as if it died): `b` leads once the lease has lapsed, and admits again
    async def b_leads_and_admits() -> bool:
        return b.leading == [event_id] and await served(redis, keyspace.event(event_id)) > before

    await tick_until(b, b_leads_and_admits, "the standby to lead and admit", within=15)
    assert await redis.get(lease) == "promoter-b"
    # the old leader, ticking again, is fenced out: it admits nothing
    results = await a.tick()
    assert [(r.leading, r.admitted) for r in results if r.event == event_id] == [(False, 0)]
    assert a.leading == []
    times = list((await admission_times(redis, keyspace.event(event_id))).values())
    assert max_in_window(times, 1000) <= rate / 60 + rate / 60 * TICK_MS / 1000
    assert len(set(tickets)) == len(tickets)
