"""Queue (join, status, redeem, release) against a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from redis.asyncio import Redis
from support.joining import uid
from support.promoting import tick_until

from waiting_room.core.states import TicketState
from waiting_room.core.tickets import new_ticket
from waiting_room.promoter import Promoter
from waiting_room.store.events import Events
from waiting_room.store.keys import Keyspace
from waiting_room.store.queue import Queue, QueueError, TicketView

pytestmark = pytest.mark.usefixtures("deadline")


async def admit_head(promoter: Promoter, queue: Queue, events: Events, event: str, ticket: str) -> TicketView:
    """Open the event at one ticket a tick until `ticket` (at the head) is admitted, then pause it."""
    await events.put(event, {"status": "open", "rate_per_minute": 600})

    async def admitted() -> bool:
        view = await queue.status(ticket)
        return view is not None and view.state is TicketState.ADMITTED

    await tick_until(promoter, admitted, f"{ticket} to be admitted")
    await events.put(event, {"status": "paused"})
    view = await queue.status(ticket)
    assert view is not None and view.claims is not None
    return view


async def test_join_is_idempotent_per_uid(queue: Queue, events: Events, event_id: str) -> None:
    await events.put(event_id, {"status": "paused"})
    me = uid()
    first, created = await queue.join(event_id, me)
    assert created
    assert (first.state, first.position, first.waiting, first.event) == (TicketState.WAITING, 1, 1, event_id)
    again, created_again = await queue.join(event_id, me)
    assert not created_again
    assert (again.ticket, again.position) == (first.ticket, 1)
    other, other_created = await queue.join(event_id, uid())
    assert other_created
    assert other.ticket != first.ticket
    assert (other.position, other.waiting) == (2, 2)


async def test_unknown_and_closed_events_refuse_joins(queue: Queue, events: Events, event_id: str) -> None:
    with pytest.raises(QueueError) as unknown:
        await queue.join(event_id, uid())
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_event")
    for status in ("sold_out", "closed"):
        await events.put(event_id, {"status": status})
        with pytest.raises(QueueError) as refused:
            await queue.join(event_id, uid())
        assert (refused.value.status, refused.value.code) == (409, "event_closed")


async def test_status_fields(queue: Queue, events: Events, event_id: str) -> None:
    await events.put(event_id, {"status": "paused"})
    tickets = [(await queue.join(event_id, uid()))[0].ticket for _ in range(3)]
    view = await queue.status(tickets[1])
    assert view is not None
    assert (view.ticket, view.event, view.state, view.position, view.waiting) == (
        tickets[1],
        event_id,
        TicketState.WAITING,
        2,
        3,
    )
    assert view.served_total == 0
    assert view.eta_seconds is None  # paused: no estimate
    assert view.claims is None
    assert set(view.to_json()) == {"ticket", "event", "state", "position", "waiting", "eta_seconds"}
    assert await queue.status(new_ticket(event_id)) is None
    assert await queue.status("not-a-ticket") is None


async def test_polling_the_status_marks_the_ticket_seen(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    view, _ = await queue.join(event_id, uid())
    seen = keyspace.event(event_id).departed
    await redis.zadd(seen, {view.ticket: 1})  # setup: departed long ago
    await queue.status(view.ticket)
    assert (await redis.zscore(seen, view.ticket) or 0) > 1
    await redis.zadd(seen, {view.ticket: 1})
    await queue.status(view.ticket, touch=False)
    assert await redis.zscore(seen, view.ticket) == 1


async def test_a_finished_tickets_uid_gets_a_new_ticket_at_the_back(
    queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    me = uid()
    mine, _ = await queue.join(event_id, me)
    others = [(await queue.join(event_id, uid()))[0].ticket for _ in range(2)]
    admitted = await admit_head(promoter, queue, events, event_id, mine.ticket)
    assert admitted.claims is not None
    await queue.redeem(admitted.claims)

    again, created = await queue.join(event_id, me)
    assert created
    assert again.ticket not in (mine.ticket, *others)
    assert (again.state, again.position, again.waiting) == (TicketState.WAITING, 3, 3)
    old = await queue.status(mine.ticket)
    assert old is not None and old.state is TicketState.REDEEMED
    same, created_again = await queue.join(event_id, me)
    assert (same.ticket, created_again) == (again.ticket, False)


async def test_a_token_redeems_exactly_once(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "session_ttl_seconds": 60})
    view, _ = await queue.join(event_id, uid())
    waiting, _ = await queue.join(event_id, uid())
    claims = (await admit_head(promoter, queue, events, event_id, view.ticket)).claims
    assert claims is not None and claims.ticket == view.ticket and claims.event == event_id

    for wrong in (
        dataclasses.replace(claims, jti="0" * 40),
        dataclasses.replace(claims, ticket=waiting.ticket),
        dataclasses.replace(claims, event="another-event"),
    ):
        with pytest.raises(QueueError) as refused:
            await queue.redeem(wrong)
        assert (refused.value.status, refused.value.code) == (401, "invalid_token")

    now = (await redis.time())[0]
    session = await queue.redeem(claims)
    assert now + 55 <= session.expires_at <= now + 65
    with pytest.raises(QueueError) as again:
        await queue.redeem(claims)
    assert (again.value.status, again.value.code) == (409, "token_used")
    done = await queue.status(view.ticket)
    assert done is not None and done.state is TicketState.REDEEMED
    k = keyspace.event(event_id)
    assert await redis.zscore(k.active, view.ticket) is not None
    assert await redis.zscore(k.pending, view.ticket) is None
    assert await redis.hget(k.stats, "redeemed") == "1"


async def test_an_expired_token_is_refused(queue: Queue, events: Events, promoter: Promoter, event_id: str) -> None:
    await events.put(event_id, {"status": "paused", "token_ttl_seconds": 5})
    view, _ = await queue.join(event_id, uid())
    claims = (await admit_head(promoter, queue, events, event_id, view.ticket)).claims
    assert claims is not None

    async def expired() -> bool:
        status = await queue.status(view.ticket)
        return status is not None and status.state is TicketState.EXPIRED

    await tick_until(promoter, expired, "the token to expire")
    with pytest.raises(QueueError) as refused:
        await queue.redeem(claims)
    assert (refused.value.status, refused.value.code) == (401, "token_expired")


async def test_release_frees_the_session_once(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    view, _ = await queue.join(event_id, uid())
    waiting, _ = await queue.join(event_id, uid())
    claims = (await admit_head(promoter, queue, events, event_id, view.ticket)).claims
    assert claims is not None
    assert not await queue.release(view.ticket)  # admitted, not redeemed: no session yet
    session = await queue.redeem(claims)
    assert await queue.session(session.cookie) == session
    assert await queue.session(view.ticket) is None  # the ticket id names no session
    assert not await queue.release_session(view.ticket)
    assert await queue.release(view.ticket)
    assert await queue.session(session.cookie) is None  # released by its token: the cookie is dead too
    assert not await queue.release_session(session.cookie)
    assert await redis.zcard(keyspace.event(event_id).active) == 0
    assert not await queue.release(view.ticket)
    assert not await queue.release(waiting.ticket)
    assert not await queue.release("not-a-ticket")


async def test_a_session_is_a_secret_of_its_own_under_the_events_hash_tag(
    keyspace: Keyspace, redis: Redis, queue: Queue, events: Events, promoter: Promoter, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "session_ttl_seconds": 60})
    view, _ = await queue.join(event_id, uid())
    claims = (await admit_head(promoter, queue, events, event_id, view.ticket)).claims
    assert claims is not None
    session = await queue.redeem(claims)
    event, _, secret = session.cookie.partition(".")
    assert (event, session.ticket, session.event) == (event_id, view.ticket, event_id)
    assert view.ticket.partition(".")[2] not in session.cookie and claims.jti not in session.cookie
    key = keyspace.event(event_id).session(secret)
    assert key.startswith(f"{keyspace.prefix}:{{{event_id}}}:")
    assert await redis.get(key) == view.ticket
    assert 55_000 <= await redis.pttl(key) <= 60_000  # the key goes with the session
    assert await queue.release_session(session.cookie)
    assert await redis.exists(key) == 0
    assert await redis.zcard(keyspace.event(event_id).active) == 0
    assert not await queue.release_session(session.cookie)
    for forged in ("", "x", f"{event_id}.{'A' * 43}", f"{event_id}.{secret}x", f"other.{secret}"):
        assert await queue.session(forged) is None


async def test_concurrent_joins_of_one_uid_get_one_ticket(queue: Queue, events: Events, event_id: str) -> None:
    await events.put(event_id, {"status": "paused"})
    me = uid()
    results = await asyncio.gather(*(queue.join(event_id, me) for _ in range(10)))
    assert len({view.ticket for view, _ in results}) == 1
    assert sum(created for _, created in results) == 1
