"""What a web process's hub reads and writes in Redis for its sockets, a transaction per batch.

The hub (web/hub.py) knows nothing of Redis: it asks this loader for an
event's snapshot and some tickets' standings, and writes through it what
abandonment needs (core/presence.py): holds at connect, departures at
close, and one heartbeat per event every few seconds. One MULTI per event and batch, so a thousand sockets arriving
at once cost a few round trips, and every standing in a snapshot is decided
on the time Redis answered in that same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from waiting_room.core import messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.standing import EventSnapshot, Heartbeat, redis_ms, standing
from waiting_room.core.tickets import TicketRecord
from waiting_room.store import keys
from waiting_room.store.keys import Keyspace
from waiting_room.store.scripts import Scripts

# Heartbeats are renewed every few seconds while a process has sockets for the event, and the promoter
# reaps a process silent for LAPSE_SECONDS; the key also goes by itself if nobody is left to reap it.
CONNS_TTL_MS = 60_000


class RedisLoader:
    errors: tuple[type[BaseException], ...] = (RedisError, OSError)  # Redis is unreachable: retry later

    def __init__(self, redis: Redis, scripts: Scripts, keyspace: Keyspace = keys.DEFAULT) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keyspace = keyspace

    async def load(
        self, event: str, tickets: Sequence[str], *, arriving: bool = False, process: str = "", sockets: int = 0
    ) -> EventSnapshot:
        """The event's totals, its sequence number, and where each ticket stands (rank and order score).

        `arriving`: new sockets of `process` (which holds `sockets` for the event): their tickets are held
        from now (no longer departed), and they also get the latest live notice (of the event or of all)."""
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
            pipe.get(k.advances)
            for ticket in tickets:
                pipe.hget(k.tickets, ticket)
                pipe.zrank(k.line, ticket)
                pipe.zscore(k.line, ticket)
            if arriving:
                self.scripts.queue_hold(pipe, k, process, sockets, tickets)
                pipe.pexpire(k.conns, CONNS_TTL_MS)
                pipe.hgetall(k.notice)

        replies = iter(await self.scripts.pipeline(self.redis, build, transaction=True))
        settings_raw, (served, observed), waiting, time_reply, seq = (next(replies) for _ in range(5))
        settings = EventSettings.from_redis(event, settings_raw) if settings_raw else None
        now_ms = redis_ms(time_reply)
        decide_with = settings or EventSettings.defaults(event)
        standings = {}
        scores = {}
        for ticket in tickets:
            raw, rank, score = next(replies), next(replies), next(replies)
            standings[ticket] = None if raw is None else standing(TicketRecord.decode(raw), rank, decide_with, now_ms)
            if score is not None:
                scores[ticket] = int(score)
        fresh_beat = arriving and int(next(replies)) == 1
        if arriving:
            next(replies)  # pexpire
        notice = messages.latest_notice(next(replies), global_notice) if arriving else None
        return EventSnapshot(
            settings=settings,
            served=int(served or 0),
            waiting=int(waiting),
            observed_rate=float(observed or 0),
            now_ms=now_ms,
            tickets=standings,
            notice=notice,
            seq=int(seq or 0),
            scores=scores,
            fresh_beat=fresh_beat,
        )

    async def beat(self, process: str, sockets: Mapping[str, int]) -> dict[str, Heartbeat]:
        """This process is alive, holding `sockets[event]` sockets for each event: one write per event. Also
        reads each event's settings (they change without a bus message) and sequence number (so a lost
        last message is noticed)."""
        events = list(sockets)

        def build(pipe: Pipeline) -> None:
            for event in events:
                k = self.keyspace.event(event)
                self.scripts.queue_hold(pipe, k, process, sockets[event], [])
                pipe.pexpire(k.conns, CONNS_TTL_MS)
                pipe.hgetall(k.settings)
                pipe.get(k.advances)

        replies = iter(await self.scripts.pipeline(self.redis, build, transaction=False))
        beats = {}
        for event in events:
            fresh, _, settings_raw, seq = (next(replies) for _ in range(4))
            settings = EventSettings.from_redis(event, settings_raw) if settings_raw else None
            beats[event] = Heartbeat(int(fresh) == 1, settings, int(seq or 0))
        return beats

    async def hold(self, event: str, process: str, sockets: int, tickets: Sequence[str]) -> None:
        """Hold these tickets again (the promoter took this process for dead while it was only stalled)."""
        await self.scripts.hold(self.keyspace.event(event), process, sockets, tickets)

    async def depart(self, event: str, process: str, tickets: Sequence[str]) -> None:
        """Sockets closed: their holders' grace starts now (unless a newer socket holds them)."""
        await self.scripts.depart(self.keyspace.event(event), process, tickets)

    async def forget(self, process: str, events: Iterable[str]) -> None:
        """This process lets go of these events: whoever it still holds departs now."""

        def build(pipe: Pipeline) -> None:
            for event in events:
                self.scripts.queue_reap(pipe, self.keyspace.event(event), process, 0)

        await self.scripts.pipeline(self.redis, build, transaction=False)
