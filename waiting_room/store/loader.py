"""What a web process's hub reads and writes in Redis for its sockets, a transaction per batch.

The hub (web/hub.py) knows nothing of Redis: it asks this loader for an
event's snapshot and some tickets' standings, and reports its socket counts
through it. One MULTI per event and batch, so a thousand sockets arriving
at once cost a few round trips, and every standing in a snapshot is decided
on the time Redis answered in that same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from waiting_room.core import messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.standing import EventSnapshot, redis_ms, standing
from waiting_room.core.tickets import TicketRecord
from waiting_room.store import keys
from waiting_room.store.keys import Keyspace
from waiting_room.store.redis_client import execute
from waiting_room.store.scripts import Scripts

# Reports are renewed every tick while a process has sockets for the event; a process that dies
# without saying so leaves a key that goes by itself.
CONNS_TTL_MS = 60_000


class RedisLoader:
    errors: tuple[type[BaseException], ...] = (RedisError, OSError)  # Redis is unreachable: retry later

    def __init__(self, redis: Redis, scripts: Scripts, keyspace: Keyspace = keys.DEFAULT) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keyspace = keyspace

    async def load(self, event: str, tickets: Sequence[str], *, arriving: bool = False) -> EventSnapshot:
        """The event's totals and where each ticket stands; holders of waiting tickets count as seen.

        `arriving`: new sockets, which also get the latest live notice (of the event or of all)."""
        k = self.keyspace.event(event)
        # the global notice sits on its own slot: read apart from the event's MULTI
        global_notice: dict[str, str] = (
            await self.redis.hgetall(self.keyspace.global_notice) if arriving else {}  # type: ignore[assignment]
        )

        def build(pipe: Pipeline) -> None:
            pipe.hgetall(k.settings)
            pipe.hmget(k.stats, "served_total", "observed_rate")
            pipe.zcard(k.line)
            self.scripts.queue_clock(pipe, k.settings)
            for ticket in tickets:
                pipe.hget(k.tickets, ticket)
                pipe.zrank(k.line, ticket)
            self.scripts.queue_touch(pipe, k, tickets)
            if arriving:
                pipe.hgetall(k.notice)

        replies = iter(await self.scripts.pipeline(self.redis, build, transaction=True))
        settings_raw, (served, observed), waiting, time_reply = (next(replies) for _ in range(4))
        settings = EventSettings.from_redis(event, settings_raw) if settings_raw else None
        now_ms = redis_ms(time_reply)
        decide_with = settings or EventSettings.defaults(event)
        standings = {}
        for ticket in tickets:
            raw, rank = next(replies), next(replies)
            standings[ticket] = None if raw is None else standing(TicketRecord.decode(raw), rank, decide_with, now_ms)
        next(replies)  # touch
        notice = messages.latest_notice(next(replies), global_notice) if arriving else None
        return EventSnapshot(
            settings=settings,
            served=int(served or 0),
            waiting=int(waiting),
            observed_rate=float(observed or 0),
            now_ms=now_ms,
            tickets=standings,
            notice=notice,
        )

    async def report(self, event: str, process: str, sockets: int, departed: Sequence[str]) -> None:
        """This process's socket count for the event (for stats), and the seen mark of sockets that closed:
        their holders' grace starts now. The count carries this host's clock; its reader allows for that."""

        def build(pipe: Pipeline) -> None:
            k = self.keyspace.event(event)
            if departed:
                self.scripts.queue_touch(pipe, k, departed)
            if sockets:
                pipe.hset(k.conns, process, f"{sockets}:{int(time.time() * 1000)}")
                pipe.pexpire(k.conns, CONNS_TTL_MS)
            else:  # no socket left (or never one: a ticket of an event that does not exist) leaves no key
                pipe.hdel(k.conns, process)

        await self.scripts.pipeline(self.redis, build, transaction=False)

    async def forget(self, process: str, events: Iterable[str]) -> None:
        """A stopping process takes its socket counts with it."""

        def build(pipe: Pipeline) -> None:
            for event in events:
                pipe.hdel(self.keyspace.event(event).conns, process)

        await execute(self.redis, build, transaction=False)
