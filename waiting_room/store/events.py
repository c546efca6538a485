"""Operating events over Redis: settings, status, notices, stats."""

from __future__ import annotations

import secrets
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from waiting_room.core import messages
from waiting_room.core.event_settings import EventSettings, InvalidSettings, validate
from waiting_room.core.health import PromoterReport, live_reports
from waiting_room.core.presence import LAPSE_SECONDS
from waiting_room.core.states import EventStatus
from waiting_room.core.tickets import SHUFFLE_RANGE
from waiting_room.store import keys
from waiting_room.store.channels import Channels
from waiting_room.store.keys import Keyspace
from waiting_room.store.redis_client import execute

CONNECTION_REPORT_MAX_AGE_MS = int(LAPSE_SECONDS * 1000)  # a web process counts until it is taken for dead


class Events:
    def __init__(self, redis: Redis, keyspace: Keyspace = keys.DEFAULT) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.channels = Channels.for_client(redis, keyspace)

    async def ids(self) -> list[str]:
        return sorted(str(e) for e in await self.redis.smembers(self.keyspace.events))

    async def get(self, event: str) -> EventSettings | None:
        raw: dict[str, str] = await self.redis.hgetall(self.keyspace.event(event).settings)  # type: ignore[assignment]
        return EventSettings.from_redis(event, raw) if raw else None

    async def put(self, event: str, changes: dict[str, Any]) -> tuple[EventSettings, bool]:
        """Create or update; returns the full settings and whether the event is new.

        Raises InvalidSettings before anything is written.
        """
        current = await self.get(event)
        settings = validate(current or EventSettings.defaults(event), changes)
        k = self.keyspace.event(event)
        moved_ahead = settings.opens_at is not None and settings.opens_at > time.time()
        moved_ahead = moved_ahead and (current is None or current.opens_at != settings.opens_at)
        # pre-queue orders sit below every post-opening one: early joins would jump ahead of people
        # already in a line that has opened, and their places would go up
        if moved_ahead and await self.redis.zcount(k.line, SHUFFLE_RANGE, "+inf") > 0:
            raise InvalidSettings(
                "opens_at", "cannot move into the future while people wait in the open line; pause the event instead"
            )
        # the event list lives on a slot of its own (a cluster cannot MULTI across slots): listed
        # first, so a crash in between leaves an event without settings (skipped), never one unlisted
        await self.redis.sadd(self.keyspace.events, event)

        def build(pipe: Pipeline) -> None:
            pipe.delete(k.settings)
            pipe.hset(k.settings, mapping=dict(settings.to_redis()))  # type: ignore[arg-type]
            if current is None or current.status != settings.status:
                self.channels.queue(pipe, event, messages.StateChange(event, settings.status).encode())

        await execute(self.redis, build)
        return settings, current is None

    async def set_status(self, event: str, status: EventStatus) -> EventSettings | None:
        if await self.get(event) is None:
            return None
        settings, _ = await self.put(event, {"status": status})
        return settings

    async def post_notice(self, event: str | None, text: str, level: str) -> dict[str, Any]:
        """Store as the latest notice (of one event, or of all) and push it to every socket."""
        notice = messages.Notice(event, secrets.token_urlsafe(8), level, text, round(time.time(), 3))
        body = notice.client_message()
        key = self.keyspace.event(event).notice if event else self.keyspace.global_notice

        def build(pipe: Pipeline) -> None:
            pipe.delete(key)
            pipe.hset(key, mapping={k: str(v) for k, v in body.items()})
            if event:
                self.channels.queue(pipe, event, notice.encode())

        await execute(self.redis, build)
        if not event:  # its own slot: published apart (on a cluster, to every node)
            await self.channels.publish_global(self.redis, notice.encode())
        return {k: v for k, v in body.items() if k != "type"}

    async def overview(self) -> list[dict[str, Any]]:
        """Every event with its settings and stats (the dashboard's and `GET /api/admin/events`' view)."""
        found = []
        for event in await self.ids():
            settings = await self.get(event)
            stats = await self.stats(event)
            if settings is not None and stats is not None:
                found.append({"id": event, "settings": settings.to_json(), "stats": stats})
        return found

    async def proof_secret(self) -> bytes:
        """The key that signs proof-of-work challenges: made by the first web process that needs it."""
        await self.redis.set(self.keyspace.proof_secret, secrets.token_urlsafe(32), nx=True)
        return str(await self.redis.get(self.keyspace.proof_secret)).encode()

    async def live_promoters(self) -> dict[str, PromoterReport]:
        """The health reports of the promoters alive now, by id (read with this host's clock)."""
        reports: dict[str, str] = await self.redis.hgetall(self.keyspace.promoters)  # type: ignore[assignment]
        return live_reports(reports, time.time())

    async def stats(self, event: str) -> dict[str, Any] | None:
        k = self.keyspace.event(event)

        def build(pipe: Pipeline) -> None:
            pipe.hgetall(k.settings)
            pipe.zcard(k.line)
            pipe.zcard(k.pending)
            pipe.zcard(k.active)
            pipe.hgetall(k.stats)
            pipe.hgetall(k.conns)

        settings_raw, waiting, pending, active, counters, conns = await execute(self.redis, build)
        if not settings_raw:
            return None
        settings = EventSettings.from_redis(event, settings_raw)
        return {
            "waiting": int(waiting),
            "admitted_pending": int(pending),
            "active": int(active),
            "served_total": int(counters.get("served_total", 0)),
            "tickets_issued": int(counters.get("issued", 0)),
            "redeemed": int(counters.get("redeemed", 0)),
            "expired": int(counters.get("expired", 0)),
            "removed": int(counters.get("removed", 0)),
            "connections": _live_connections(conns, int(time.time() * 1000)),
            "rate_per_minute": settings.rate_per_minute,
            "max_active": settings.max_active,
            "observed_rate_per_minute": round(float(counters.get("observed_rate", 0) or 0), 1),
            "status": str(settings.status),
        }


def _live_connections(reports: dict[str, str], now_ms: int) -> int:
    """Sum the socket counts of web processes whose heartbeat is recent (dead ones age out).

    The heartbeats carry Redis's clock, compared here with ours: the tolerance
    (the heartbeat lapse) covers clocks kept by NTP.
    """
    total = 0
    for report in reports.values():
        count, _, at = report.partition(":")
        if at and now_ms - int(at) <= CONNECTION_REPORT_MAX_AGE_MS:
            total += int(count)
    return total
