"""The hub: one pub/sub subscription per web process, fanned out to its sockets.

Sockets live in memory, grouped by event into rooms. The promoter publishes
one `advance` message per event per tick; the hub turns it into
`admitted` for the few local tickets it names and a new position for the
rest, computed in memory (see `ranks`). Each socket has its own writer task
fed through a tiny mailbox: the fan-out loop only sets flags and never
awaits a peer, so a slow socket delays nobody but itself. Positions are
coalesced (a slow socket gets the latest, not every one); `admitted`,
`notice` and `state` are never dropped.

Redis work per tick is a slice of sockets (pipelined ZRANK, so each is exact
again within REFRESH_SECONDS) plus one report of the socket count — it does
not grow with the line, and grows with local sockets only by the slice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from waiting_room.core import messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.states import CloseCode, TicketState
from waiting_room.core.tickets import TicketRecord
from waiting_room.core.tokens import Claims, Signer
from waiting_room.store import keys
from waiting_room.store.keys import EventKeys
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts
from waiting_room.web.rooms import Conn, Room

log = logging.getLogger(__name__)

ARRIVAL_BATCH = 500  # sockets that connect together are loaded together, this many per round trip


@dataclass
class HubStats:
    """Counters the metrics module reads (kept here so the hub has no metrics dependency)."""

    fanout_lag: deque[float] = field(default_factory=lambda: deque(maxlen=4096))


class Hub:
    def __init__(
        self, redis: Redis, bus_redis: Redis, queue: Queue, scripts: Scripts, signer: Signer, tick_seconds: float
    ) -> None:
        self.redis = redis
        self.bus_redis = bus_redis  # its own connection: a subscribed connection can do nothing else
        self.queue = queue
        self.scripts = scripts
        self.signer = signer
        self.tick_seconds = tick_seconds
        self.id = secrets.token_hex(6)
        self.rooms: dict[str, Room] = {}
        self.stats = HubStats()
        self.subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._arrivals: deque[tuple[Conn, asyncio.Future[None]]] = deque()
        self._arrived = asyncio.Event()

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(loop()) for loop in (self._listen, self._refresh_loop, self._arrivals_loop)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.subscribed.wait(), 5)

    async def stop(self) -> None:
        for room in self.rooms.values():
            for conn in room.conns.values():
                conn.close(CloseCode.GOING_AWAY)
        # redis-py can swallow a cancel that lands while it sets up a connection, and the loop then
        # goes on: cancel again until every task has really ended, or shutdown hangs
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        await asyncio.gather(*self._tasks, return_exceptions=True)  # all done: collects their outcomes
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in self.rooms:
                    pipe.hdel(EventKeys(event).conns, self.id)
                await pipe.execute()

    # --- sockets ---------------------------------------------------------

    async def attach(self, conn: Conn) -> bool:
        """Register a socket, then read where its ticket stands; False if the socket was closed."""
        room = self.rooms.get(conn.event)
        if room is None:
            room = self.rooms[conn.event] = Room(conn.event)
        older = room.add(conn)
        if older is not None:
            older.close(CloseCode.REPLACED)
        # registered before reading: an admission published from here on reaches this socket
        arrival: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arrivals.append((conn, arrival))
        self._arrived.set()
        await arrival
        return conn.close_code is None

    async def _arrivals_loop(self) -> None:
        """Load new sockets in batches: a thousand arriving at once cost a few round trips, not a
        thousand, and never wait long for a free Redis connection."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._arrivals:
                batch = [self._arrivals.popleft() for _ in range(min(len(self._arrivals), ARRIVAL_BATCH))]
                error: BaseException | None = None
                try:
                    await self._load([conn for conn, _ in batch], arriving=True)
                except Exception as exc:  # never let the loop die: every later socket would hang
                    if not isinstance(exc, RedisError | OSError):
                        log.exception("loading %d new sockets failed", len(batch))
                    error = exc
                for _, arrival in batch:
                    if arrival.done():  # its client went away meanwhile
                        continue
                    if error is None:
                        arrival.set_result(None)
                    else:
                        arrival.set_exception(error)

    def detach(self, conn: Conn) -> None:
        room = self.rooms.get(conn.event)
        if room is not None:
            room.remove(conn)

    async def pump(self, conn: Conn) -> None:
        """The socket's writer: mailbox first, then the latest position, then a close if asked."""
        room = self.rooms[conn.event]
        while True:
            await conn.wake.wait()
            conn.wake.clear()
            while conn.mailbox:
                await conn.ws.send_text(conn.mailbox.popleft())
            if conn.close_code is not None:
                with contextlib.suppress(Exception):
                    await conn.ws.close(conn.close_code)
                return
            if conn.position_due and not conn.admitted:
                conn.position_due = False
                message = room.position_message(conn)
                if message is not None:
                    await conn.ws.send_text(messages.encode(message))

    def _admit(self, room: Room, conn: Conn, claims: Claims) -> None:
        if conn.admitted:
            return
        conn.admitted = True
        token = self.signer.mint(claims)
        conn.send(messages.admitted(token, claims.expires_at, room.target_url or f"/order/{room.event}"))

    # --- reading Redis ---------------------------------------------------

    async def _load(self, conns: list[Conn], arriving: bool = False) -> None:
        """Read rank, record and event state for `conns` in one MULTI, and push what follows.

        `arriving`: new sockets — also tell other processes these replace any socket they hold for
        the same tickets, and send each the latest live notice.
        """
        by_event: dict[str, list[Conn]] = {}
        for conn in conns:
            by_event.setdefault(conn.event, []).append(conn)
        for event, group in by_event.items():
            k = EventKeys(event)

            def build(pipe: Pipeline, k: EventKeys = k, group: list[Conn] = group) -> None:
                pipe.hgetall(k.settings)
                pipe.hmget(k.stats, "served_total", "observed_rate")
                pipe.zcard(k.line)
                for conn in group:
                    pipe.hget(k.tickets, conn.ticket)
                    pipe.zrank(k.line, conn.ticket)
                self.scripts.queue_touch(pipe, k, [c.ticket for c in group])
                if arriving:
                    pipe.hgetall(k.notice)
                    pipe.hgetall(keys.GLOBAL_NOTICE)
                    for conn in group:
                        pipe.publish(keys.BUS, messages.Claim(conn.ticket, conn.id).encode())

            replies = await self.scripts.pipeline(self.redis, build, transaction=True)
            settings_raw, (served, observed), waiting = replies[:3]
            room = self.rooms.get(event)
            if room is None:
                continue
            if settings_raw:
                room.apply_settings(EventSettings.from_redis(event, settings_raw))
            served_now = int(served or 0)
            room.served = max(room.served, served_now)
            room.waiting = int(waiting)
            room.observed_rate = float(observed or 0)
            for i, conn in enumerate(group):
                raw, rank = replies[3 + 2 * i], replies[4 + 2 * i]
                self._apply(room, conn, raw, rank, served_now)
            if arriving:
                after_touch = 3 + 2 * len(group) + 1
                notice = messages.latest_notice(replies[after_touch], replies[after_touch + 1])
                for conn in group:
                    if notice is not None and conn.close_code is None:
                        conn.send(notice)

    def _apply(self, room: Room, conn: Conn, raw: str | None, rank: int | None, served: int) -> None:
        if raw is None:
            conn.close(CloseCode.UNKNOWN_TICKET)
            return
        record = TicketRecord.decode(raw)
        state = record.state(int(time.time() * 1000), room.opens_at)
        admission = record.admission
        if state is TicketState.ADMITTED and admission is not None:
            self._admit(room, conn, Claims.of(self.signer.issuer, room.event, conn.ticket, admission))
        elif state.finished:
            conn.close(CloseCode.NOT_WAITING)
        elif state is TicketState.PRE_QUEUE:
            room.unranked.add(conn.ticket)
            conn.position_changed()
        elif rank is not None:
            conn.tracker.observe(rank, served)
            conn.position_changed()

    async def _refresh_loop(self) -> None:
        last = time.monotonic()
        while True:
            started = time.monotonic()
            with contextlib.suppress(RedisError, OSError):
                # slices sized by the time that really passed: a busy loop that comes round late
                # reads more, so every socket is still re-read within REFRESH_SECONDS
                await self._refresh(started - last)
            last = started
            await asyncio.sleep(max(0.0, self.tick_seconds - (time.monotonic() - started)))

    async def _refresh(self, elapsed: float) -> None:
        """Exact ranks for a slice of each room, the seen marks, and this process's socket counts."""
        now_ms = int(time.time() * 1000)
        for event, room in list(self.rooms.items()):
            opened = room.due_at_opening(time.time(), ARRIVAL_BATCH)
            also = set(opened)
            picked = [*opened, *(c for c in room.refresh_slice(max(elapsed, self.tick_seconds)) if c not in also)]
            if picked:
                await self._load(picked)
            if room.departed:
                departed, room.departed = room.departed, []
                await self.scripts.touch(EventKeys(event), departed)
            await self.redis.hset(EventKeys(event).conns, self.id, f"{len(room.conns)}:{now_ms}")
            if not room.conns and self.rooms.get(event) is room:  # (re-checked after the await)
                del self.rooms[event]

    # --- the bus ---------------------------------------------------------

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.bus_redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.BUS)
                await self._reconcile()
                self.subscribed.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self.dispatch(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("bus subscription lost (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _reconcile(self) -> None:
        """After (re)subscribing: anything published while away is lost, so re-read every local socket."""
        everyone = [conn for room in self.rooms.values() for conn in room.conns.values()]
        for start in range(0, len(everyone), 1000):
            await self._load(everyone[start : start + 1000])

    def dispatch(self, data: str) -> None:
        """One bus message; a malformed one (another version, another publisher) is logged, never fatal."""
        try:
            message = messages.parse(data)
        except messages.MalformedMessage:
            log.warning("ignoring a malformed bus message: %.200s", data)
            return
        if isinstance(message, messages.Advance):
            self._on_advance(message)
        elif isinstance(message, messages.Claim):
            self._on_claim(message)
        elif isinstance(message, messages.StateChange):
            self._on_state(message)
        elif isinstance(message, messages.Notice):
            self._on_notice(message)

    def _on_advance(self, message: messages.Advance) -> None:
        room = self.rooms.get(message.event)
        if room is None:
            return
        self.stats.fanout_lag.append(time.time() - message.at_ms / 1000)
        room.served = max(room.served, message.served)
        room.waiting = message.waiting
        room.observed_rate = message.observed_rate
        room.status = message.status
        for admitted in message.admitted:
            conn = room.conns.get(admitted.ticket)
            if conn is not None:
                self._admit(room, conn, Claims.of(self.signer.issuer, room.event, admitted.ticket, admitted.admission))
        for ticket in message.finished:
            conn = room.conns.get(ticket)
            if conn is not None:
                conn.close(CloseCode.NOT_WAITING)
        for conn in room.conns.values():
            conn.position_changed()

    def _on_claim(self, message: messages.Claim) -> None:
        room = self.rooms.get(message.event or "")
        conn = room.conns.get(message.ticket) if room else None
        if conn is not None and conn.id != message.conn:
            conn.close(CloseCode.REPLACED)

    def _on_state(self, message: messages.StateChange) -> None:
        room = self.rooms.get(message.event)
        if room is None:
            return
        room.status = message.status
        body = message.client_message()
        for conn in room.conns.values():
            conn.send(body)
            conn.position_changed()  # the ETA changes with the status

    def _on_notice(self, message: messages.Notice) -> None:
        body = message.client_message()
        rooms = self.rooms.values() if message.event is None else filter(None, [self.rooms.get(message.event)])
        for room in rooms:
            for conn in room.conns.values():
                conn.send(body)
