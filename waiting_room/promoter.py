"""The promoter: the writer of admissions from the line.

Every tick it runs promote.lua once per event, all in one pipeline. Each
event has its own lease under the event's hash tag; the script checks and
renews it before writing anything (fencing), so a promoter that stalled
past its lease cannot admit, and a standby takes over within the lease.
The rate's token bucket lives in Redis beside the event: promote.lua
refills and spends it, and join.lua's fast lane (queue_only_when_full)
spends from the same one, so the two together keep to the rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, RedisError

from waiting_room.core.eta import ObservedRate, rate_moved
from waiting_room.core.health import REPORT_SECONDS, PromoterReport
from waiting_room.core.presence import LAPSE_SECONDS
from waiting_room.core.states import EventStatus
from waiting_room.store import keys
from waiting_room.store.channels import Channels
from waiting_room.store.keys import EventKeys, Keyspace
from waiting_room.store.redis_client import execute
from waiting_room.store.scripts import PromoteArgs, Scripts, promote_reply

log = logging.getLogger(__name__)

BATCH = 500  # most tickets expired, removed or trimmed per event per tick
KEEP_FINISHED_MS = 6 * 3600 * 1000  # a finished ticket still answers its status this long
ETA_REPUSH_SECONDS = 3.0  # least time between messages published only because the ETAs went stale


def lease_ms(tick_ms: int) -> int:
    """Long enough to survive a slow tick or two, short enough to lapse within 3 s."""
    return min(3000, max(2000, 3 * tick_ms))


@dataclass
class EventTrack:
    """What the promoter remembers of one event between ticks."""

    observed: ObservedRate = field(default_factory=ObservedRate)
    leading: bool = False
    last_published: str = ""
    last_tick: float | None = None
    published_rate: float | None = None  # the observed rate the last published message was computed with
    published_at: float = 0.0
    sending_rate: float | None = None  # the observed rate of the tick under way
    withheld: list[tuple[str, str]] = field(default_factory=list)  # (node, advance message) not yet confirmed

    def eta_stale(self, now: float) -> bool:
        """Whether to publish although nobody moved: the ETAs clients were told are off by a material share
        (a line stalled on capacity: the observed rate decays and every ETA grows). At most every
        ETA_REPUSH_SECONDS, and once per event, however many sockets each web process holds."""
        return now - self.published_at >= ETA_REPUSH_SECONDS and rate_moved(
            self.published_rate, self.observed.per_minute
        )


@dataclass(frozen=True)
class TickResult:
    event: str
    leading: bool
    admitted: int = 0
    served: int = 0
    waiting: int = 0


class Promoter:
    def __init__(
        self, redis: Redis, scripts: Scripts, tick_ms: int, owner: str | None = None, keyspace: Keyspace = keys.DEFAULT
    ) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.scripts = scripts
        self.tick_ms = tick_ms
        self.owner = owner or f"promoter-{secrets.token_hex(6)}"
        self.channels = Channels.for_client(redis, keyspace)
        self.tracks: dict[str, EventTrack] = {}
        self._lapsed: list[tuple[str, str]] = []  # (event, web process) whose heartbeat a tick found lapsed
        self._slowest_tick = 0.0
        self._last_report = 0.0

    @property
    def tick_seconds(self) -> float:
        return self.tick_ms / 1000

    @property
    def leading(self) -> list[str]:
        return sorted(e for e, t in self.tracks.items() if t.leading)

    async def tick(self) -> list[TickResult]:
        events = sorted(str(e) for e in await self.redis.smembers(self.keyspace.events))
        now = time.monotonic()
        calls = [(self.keyspace.event(event), self._args(event, now)) for event in events]
        if self.scripts.durability.enabled:
            results = await self._durable_tick(events, calls, now)
        else:

            def build(pipe: Pipeline) -> None:
                for k, args in calls:
                    self.scripts.queue_promote(pipe, k, args)

            # errors come back per event: one event's failure must not stop the others
            replies = await self.scripts.pipeline(self.redis, build, transaction=False, raise_on_error=False)
            results = [self._apply(event, reply, now) for event, reply in zip(events, replies, strict=True)]
        for event in set(self.tracks) - set(events):
            del self.tracks[event]
        if self._lapsed:
            lapsed, self._lapsed = self._lapsed, []
            await self._reap(lapsed)
        return results

    async def _reap(self, lapsed: list[tuple[str, str]]) -> None:
        """Web processes that stopped beating: their holders depart as of their last heartbeat (once)."""

        def build(pipe: Pipeline) -> None:
            for event, process in lapsed:
                self.scripts.queue_reap(pipe, self.keyspace.event(event), process, int(LAPSE_SECONDS * 1000))

        replies = await self.scripts.pipeline(self.redis, build, transaction=False, raise_on_error=False)
        for (event, process), reply in zip(lapsed, replies, strict=True):
            if isinstance(reply, Exception):
                log.warning("reaping web process %s of %s failed: %s", process, event, reply)
            elif int(reply) >= 0:
                log.info("%s: web process %s is gone; %d holders departed", event, process, reply)

    def _args(self, event: str, now: float) -> PromoteArgs:
        track = self.tracks.setdefault(event, EventTrack())
        track.sending_rate = track.observed.per_minute
        return PromoteArgs(
            owner=self.owner,
            lease_ms=lease_ms(self.tick_ms),
            tick_ms=self.tick_ms,
            observed_rate=track.observed.per_minute,
            channel=self.channels.of(event),
            last_published="" if track.eta_stale(now) else track.last_published,
            batch=BATCH,
            keep_finished_ms=KEEP_FINISHED_MS,
            # with WR_REDIS_MIN_REPLICAS the promoter sends the message itself, once replicas hold the tick
            publish="" if self.scripts.durability.enabled else self.channels.command(),
        )

    async def _durable_tick(
        self, events: list[str], calls: list[tuple[EventKeys, PromoteArgs]], now: float
    ) -> list[TickResult]:
        """Each event's node runs its promotes, then WAIT; a tick's `advance` message goes out only
        once replicas hold what it announces. Unconfirmed, the admissions stay written (they cannot
        be taken back) but unannounced and unreported: their holders learn of them by reading Redis
        (socket re-reads, status polls), or from the withheld message, sent when a later tick on
        the same node is confirmed (replicas that hold a later write hold the earlier ones). A node
        found short gets no writes at all until its replicas answer again."""
        commands = [self.scripts.promote_command(k, args) for k, args in calls]
        durability = self.scripts.durability
        outcomes = await durability.send(commands)
        forgotten = [i for i, o in enumerate(outcomes) if isinstance(o.reply, NoScriptError)]
        if forgotten:  # a promoted replica or a restarted node: load the scripts, send those again
            await self.scripts.load()
            again = await durability.send([commands[i] for i in forgotten])
            for i, outcome in zip(forgotten, again, strict=True):
                outcomes[i] = outcome
        results: list[TickResult] = []
        due: list[tuple[str, str]] = []
        for event, outcome in zip(events, outcomes, strict=True):
            track = self.tracks[event]
            raw = outcome.reply
            if isinstance(raw, Exception):
                track.withheld.clear()  # the node may have changed: what it held is unknown now
                results.append(self._apply(event, raw, now))
                continue
            message = promote_reply(raw).message
            if message:
                track.withheld.append((outcome.node, message))
            if outcome.confirmed:
                due.extend((event, m) for node, m in track.withheld if node == outcome.node)
                track.withheld.clear()
                results.append(self._apply(event, raw, now))
            else:
                log.warning("%s: replicas did not confirm this tick in time; its admissions stay unannounced", event)
                if int(raw[0]) == 1:
                    raw = [*raw[:7], 0, *raw[8:]]  # not sent: the next tick says it again
                results.append(replace(self._apply(event, raw, now), admitted=0))
        if due:

            def publish(pipe: Pipeline) -> None:
                for event, message in due:
                    self.channels.queue(pipe, event, message)

            await execute(self.redis, publish, transaction=False)
        return results

    def _apply(self, event: str, raw: Any, now: float) -> TickResult:
        track = self.tracks[event]
        if isinstance(raw, Exception):
            log.warning("promote %s failed: %s", event, raw)
            return TickResult(event, leading=False)
        reply = promote_reply(raw)
        if not reply.leading:
            if track.leading:
                log.info("%s: another promoter leads this event now", event)
            track.leading = False
            track.last_tick = None  # the gap while another led says nothing about the rate
            return TickResult(event, leading=False)
        self._lapsed.extend((event, process) for process in reply.lapsed)
        if not track.leading:
            log.info("%s: leading this event", event)
            track.leading = True
        if reply.status is EventStatus.OPEN and not reply.pre_open and track.last_tick is not None:
            # the fast lane's admissions spent the same rate: they count as observed admissions
            track.observed.update(reply.admitted + reply.fast, now - track.last_tick, reply.waiting)
        track.last_tick = now
        if reply.published:
            track.last_published = f"{reply.served_total}:{reply.waiting}"
            track.published_rate, track.published_at = track.sending_rate, now
        return TickResult(event, True, reply.admitted, reply.served_total, reply.waiting)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick on a fixed grid (no drift) until `stop`; ride out Redis outages with backoff."""
        log.info("promoter %s ticking every %d ms", self.owner, self.tick_ms)
        next_at = time.monotonic()
        backoff = 0.1
        while not stop.is_set():
            try:
                started = time.monotonic()
                await self.tick()
                await self._report(time.monotonic() - started)
                backoff = 0.1
            except (RedisError, OSError) as exc:
                log.warning("tick failed (%s); retrying in %.1f s", exc, backoff)
                for track in self.tracks.values():
                    track.leading = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 2.0)
                next_at = time.monotonic()
                continue
            next_at += self.tick_seconds
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind: skip the missed ticks rather than run them back to back
                next_at = time.monotonic()
                delay = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hdel(self.keyspace.promoters, self.owner)

    async def _report(self, tick_seconds: float) -> None:
        """Leadership and the slowest tick since the last report, for every web process's /metrics."""
        self._slowest_tick = max(self._slowest_tick, tick_seconds)
        now = time.time()
        if now - self._last_report < REPORT_SECONDS:
            return
        report = PromoterReport(now, tuple(self.leading), self._slowest_tick)
        await self.redis.hset(self.keyspace.promoters, self.owner, report.encode())
        self._last_report, self._slowest_tick = now, 0.0
