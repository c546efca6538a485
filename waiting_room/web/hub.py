"""The hub: a web process's rooms of sockets, fed from the bus and from batched reads, fanned out.

It knows no Redis. Two narrow interfaces bring the outside in: the `Bus`
delivers typed messages (store/bus.py: Redis pub/sub, or in memory for
tests), and the `Loader` reads an event's snapshot and its tickets'
standings in one transaction (store/loader.py). Each socket's writes are its
Conn's (web/conn.py), its endpoint (web/ws.py) only reads.

The promoter publishes one `advance` message per event per tick; the hub
turns it into `admitted` for the few local tickets it names and a new
position for the rest, computed in memory from what the message says left
the line (core/ranks.py): a rank is read once, at connect, and again only
if a message was missed (a gap in the event's sequence numbers), in one
batch. The fan-out loop writes to each socket at once, without awaiting it,
while the socket takes it; a socket that is backed up gets its messages
from its own drain task later, so a slow socket delays nobody but itself.
Positions are coalesced (a slow socket gets the latest, not every one);
`admitted`, `notice` and `state` are never dropped.

Store work does not grow with the line or with connected sockets: per
event this process holds sockets for, one heartbeat every HEARTBEAT_SECONDS
(core/presence.py); per socket, O(1) commands when it connects and when it
closes, batched.
No ticket is decided on this host's clock: standings come with the time
Redis answered, and what the hub schedules by time (opening a pre-queue)
uses Redis's clock as last seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from waiting_room.core import messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.messages import BusMessage
from waiting_room.core.presence import HEARTBEAT_SECONDS, LAPSE_SECONDS
from waiting_room.core.standing import EventSnapshot, Heartbeat, Standing
from waiting_room.core.states import CloseCode, TicketState
from waiting_room.core.tokens import Claims, Signer
from waiting_room.web.conn import Conn
from waiting_room.web.rooms import Room

log = logging.getLogger(__name__)

ARRIVAL_BATCH = 500  # sockets that connect together are loaded together, this many per round trip
RESYNC_BATCH = 1000


class Loader(Protocol):
    """Reads and writes of the store for sockets (store/loader.py's RedisLoader)."""

    errors: tuple[type[BaseException], ...]  # what the store raises while unreachable

    async def load(
        self, event: str, tickets: Sequence[str], *, arriving: bool = False, process: str = "", sockets: int = 0
    ) -> EventSnapshot: ...

    async def beat(self, process: str, sockets: Mapping[str, int]) -> dict[str, Heartbeat]: ...

    async def hold(self, event: str, process: str, sockets: int, tickets: Sequence[str]) -> None: ...

    async def depart(self, event: str, process: str, tickets: Sequence[str]) -> None: ...

    async def forget(self, process: str, events: Iterable[str]) -> None: ...


class Bus(Protocol):
    """Typed messages between processes (store/bus.py's RedisBus, MemoryBus)."""

    ready: asyncio.Event

    def start(self, deliver: Callable[[BusMessage], None], resync: Callable[[str | None], Awaitable[None]]) -> None: ...

    async def stop(self) -> None: ...

    def subscribe_event(self, event: str) -> None: ...

    def unsubscribe_event(self, event: str) -> None: ...

    async def publish(self, batch: Sequence[BusMessage]) -> None: ...


@dataclass
class HubStats:
    """Counters the metrics module reads (kept here so the hub has no metrics dependency)."""

    fanout_lag: deque[float] = field(default_factory=lambda: deque(maxlen=4096))


class Hub:
    def __init__(self, loader: Loader, bus: Bus, signer: Signer, tick_seconds: float) -> None:
        self.loader = loader
        self.bus = bus
        self.signer = signer
        self.tick_seconds = tick_seconds
        self.id = secrets.token_hex(6)
        self.rooms: dict[str, Room] = {}
        self.stats = HubStats()
        self._clock_offset = 0.0  # Redis's clock minus ours, as last read
        self._claimed_ms = 0  # the time of this process's last claims (see messages.Claim)
        self._tasks: list[asyncio.Task[None]] = []
        self._arrivals: deque[tuple[Conn, asyncio.Future[None]]] = deque()
        self._arrived = asyncio.Event()  # arrivals, departures or reholds are waiting to be written

    @property
    def subscribed(self) -> asyncio.Event:
        return self.bus.ready

    def now(self) -> float:
        """Unix seconds on Redis's clock (as of the last read), for what the hub schedules by time."""
        return time.time() + self._clock_offset

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(loop()) for loop in (self._upkeep_loop, self._heartbeat_loop, self._arrivals_loop)
        ]
        self.bus.start(self.dispatch, self._resync)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.bus.ready.wait(), 5)

    async def stop(self) -> None:
        for room in self.rooms.values():
            for conn in room.conns.values():
                conn.close(CloseCode.GOING_AWAY)
        await self.bus.stop()
        # cancel again until every task has really ended (a cancel can be swallowed mid-connect)
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        await asyncio.gather(*self._tasks, return_exceptions=True)  # all done: collects their outcomes
        with contextlib.suppress(*self.loader.errors):
            await self.loader.forget(self.id, list(self.rooms))

    # --- sockets ---------------------------------------------------------

    async def attach(self, conn: Conn) -> Room:
        """Register a socket, then read where its ticket stands (and push it)."""
        room = self.rooms.get(conn.event)
        if room is None:
            room = self.rooms[conn.event] = Room(conn.event)
            self.bus.subscribe_event(conn.event)
        older = room.add(conn)
        if older is not None:
            older.close(CloseCode.REPLACED)
        # registered before reading: an admission published from here on reaches this socket
        arrival: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arrivals.append((conn, arrival))
        self._arrived.set()
        await arrival
        return room

    def detach(self, conn: Conn) -> None:
        room = self.rooms.get(conn.event)
        if room is not None:
            room.remove(conn)
            self._arrived.set()

    async def _arrivals_loop(self) -> None:
        """Load new sockets in batches: a thousand arriving at once cost a few round trips, not a
        thousand, and never wait long for a free store connection.

        Departures and reholds are written here too, before the arrivals: one task writes the marks,
        so a socket that closes and comes back is always departed before it is held again."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            try:
                await self._write_marks()
            except self.loader.errors as exc:
                log.warning("writing socket departures failed (%s); retrying", exc)
            while self._arrivals:
                batch = [self._arrivals.popleft() for _ in range(min(len(self._arrivals), ARRIVAL_BATCH))]
                error: BaseException | None = None
                try:
                    await self._load([conn for conn, _ in batch], arriving=True)
                except Exception as exc:  # never let the loop die: every later socket would hang
                    if not isinstance(exc, self.loader.errors):
                        log.exception("loading %d new sockets failed", len(batch))
                    error = exc
                for _, arrival in batch:
                    if arrival.done():  # its client went away meanwhile
                        continue
                    if error is None:
                        arrival.set_result(None)
                    else:
                        arrival.set_exception(error)

    async def _write_marks(self) -> None:
        """Departures of closed sockets, holds again after this process was taken for dead, and the
        release of events it holds no socket for any more."""
        for event, room in list(self.rooms.items()):
            gone = room.take_departed()
            if gone:
                try:
                    await self.loader.depart(event, self.id, gone)
                except BaseException:
                    room.departed[:0] = gone
                    raise
            if room.rehold:
                room.rehold = False
                tickets = list(room.conns)
                try:
                    for start in range(0, len(tickets), ARRIVAL_BATCH):
                        await self.loader.hold(event, self.id, len(room.conns), tickets[start : start + ARRIVAL_BATCH])
                except BaseException:
                    room.rehold = True
                    raise
            if not room.conns and not room.departed and self.rooms.get(event) is room:
                del self.rooms[event]
                self.bus.unsubscribe_event(event)
                await self.loader.forget(self.id, [event])

    def _admit(self, room: Room, conn: Conn, claims: Claims) -> None:
        if conn.admitted:
            return
        if room.target_url is None:  # the room's settings are not read yet: the token must name its target
            room.early.append((conn, claims))
            return
        conn.admitted = True
        token = self.signer.mint(claims)
        conn.send(messages.admitted(token, claims.expires_at, room.target_url or f"/order/{room.event}"))

    def _settle(self, room: Room, settings: EventSettings) -> None:
        room.apply_settings(settings)
        early, room.early = room.early, []
        for conn, claims in early:
            if conn.close_code is None:
                self._admit(room, conn, claims)

    # --- reading the store -----------------------------------------------

    async def _load(self, conns: list[Conn], arriving: bool = False) -> None:
        """Read where `conns` stand, an event per transaction, and push what follows.

        `arriving`: new sockets — also tell other processes these replace any socket they hold for
        the same tickets, and send each the latest live notice.
        """
        by_event: dict[str, list[Conn]] = {}
        for conn in conns:
            by_event.setdefault(conn.event, []).append(conn)
        for event, group in by_event.items():
            tickets = [conn.ticket for conn in group]
            room = self.rooms.get(event)
            sockets = len(room.conns) if room is not None else 0
            snapshot = await self.loader.load(event, tickets, arriving=arriving, process=self.id, sockets=sockets)
            room = self.rooms.get(event)
            if room is not None:
                self._apply(room, group, snapshot)
            if arriving:
                # later than this process's last claim, even in the same millisecond or if Redis's clock
                # stepped back (a failover): a socket that connects later here is always the newer
                self._claimed_ms = max(snapshot.now_ms, self._claimed_ms + 1)
                await self.bus.publish(self._claim(group, self._claimed_ms))

    @staticmethod
    def _claim(group: list[Conn], now_ms: int) -> list[BusMessage]:
        """Order the arrivals by the time of the read that just loaded them (see messages.Claim); an
        arrival already replaced (here, or by a newer claim heard meanwhile) claims nothing."""
        claims: list[BusMessage] = []
        for conn in group:
            if conn.close_code is not None:
                continue
            conn.claimed = (now_ms, conn.id)
            if conn.rival is not None and conn.rival > conn.claimed:
                conn.close(CloseCode.REPLACED)
                continue
            claims.append(messages.Claim(conn.ticket, conn.id, now_ms))
        return claims

    def _apply(self, room: Room, group: list[Conn], snapshot: EventSnapshot) -> None:
        self._clock_offset = snapshot.now_ms / 1000 - time.time()
        if snapshot.settings is not None:
            self._settle(room, snapshot.settings)
        room.served = max(room.served, snapshot.served)
        room.waiting = snapshot.waiting
        room.observed_rate = snapshot.observed_rate
        if snapshot.fresh_beat:
            self._beating(room, fresh=True)
        for conn in group:
            self._place(room, conn, snapshot.tickets.get(conn.ticket), snapshot)
            if snapshot.notice is not None and conn.close_code is None:
                conn.send(snapshot.notice)

    @staticmethod
    def _beating(room: Room, fresh: bool) -> None:
        """A hold wrote this process's heartbeat; a fresh entry after earlier ones means the promoter
        took this process for dead (a long stall) and its holders departed: hold them all again."""
        if fresh and room.beating:
            room.rehold = True
        room.beating = True

    def _place(self, room: Room, conn: Conn, standing: Standing | None, snapshot: EventSnapshot) -> None:
        if standing is None:
            conn.close(CloseCode.UNKNOWN_TICKET)
        elif standing.admission is not None:
            self._admit(room, conn, Claims.of(self.signer.issuer, room.event, conn.ticket, standing.admission))
        elif standing.state.finished or standing.state is TicketState.ADMITTED:
            conn.close(CloseCode.NOT_WAITING)
        elif standing.state is TicketState.PRE_QUEUE:
            room.unranked.add(conn.ticket)
            conn.position_changed()
        elif standing.position is not None and conn.ticket in snapshot.scores:
            conn.tracker.observe(standing.position - 1, snapshot.scores[conn.ticket], snapshot.seq)
            room.heard(conn)  # messages published after the read may have arrived before its reply

    async def _upkeep_loop(self) -> None:
        while True:
            started = time.monotonic()
            with contextlib.suppress(*self.loader.errors):
                await self._upkeep()
            await asyncio.sleep(max(0.0, self.tick_seconds - (time.monotonic() - started)))

    async def _upkeep(self) -> None:
        """Ranks to read (sockets that missed a change, pre-queue sockets at the opening), a batch per
        event, and a nudge to the writer of marks."""
        for room in list(self.rooms.values()):
            opened = room.due_at_opening(self.now(), ARRIVAL_BATCH)
            stale = [c for c in room.take_stale(ARRIVAL_BATCH) if c not in opened]
            if opened or stale:
                try:
                    await self._load([*opened, *stale])
                except BaseException:  # read them next time
                    room.unranked.update(c.ticket for c in opened)
                    room.stale.update(c.ticket for c in stale)
                    raise
        if any(room.departed or room.rehold or not room.conns for room in self.rooms.values()):
            self._arrived.set()

    async def _heartbeat_loop(self) -> None:
        """Its own task, so slow reads never delay it: a process silent too long is taken for dead."""
        last = time.monotonic()
        while True:
            started = time.monotonic()
            if started - last > LAPSE_SECONDS / 2:
                log.warning("heartbeat %.1f s apart (the event loop is overloaded)", started - last)
            last = started
            with contextlib.suppress(*self.loader.errors):
                await self._heartbeat()
            await asyncio.sleep(max(0.0, HEARTBEAT_SECONDS - (time.monotonic() - started)))

    async def _heartbeat(self) -> None:
        rooms = dict(self.rooms)
        if not rooms:
            return
        beats = await self.loader.beat(self.id, {event: len(room.conns) for event, room in rooms.items()})
        for event, beat in beats.items():
            room = rooms[event]
            self._beating(room, beat.fresh)
            if beat.settings is not None:
                self._settle(room, beat.settings)
            room.published(beat.seq)
        if any(room.rehold for room in rooms.values()):
            self._arrived.set()

    async def _resync(self, event: str | None) -> None:
        """After (re)subscribing: anything published while away is lost, so re-read the local sockets."""
        rooms = self.rooms.values() if event is None else filter(None, [self.rooms.get(event)])
        everyone = [conn for room in list(rooms) for conn in room.conns.values()]
        for start in range(0, len(everyone), RESYNC_BATCH):
            await self._load(everyone[start : start + RESYNC_BATCH])

    # --- the bus ---------------------------------------------------------

    def dispatch(self, message: BusMessage) -> None:
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
        self.stats.fanout_lag.append(self.now() - message.at_ms / 1000)
        room.served = max(room.served, message.served)
        room.waiting = message.waiting
        room.observed_rate = message.observed_rate
        room.status = message.status
        change = message.change
        if change is not None:
            room.log.add(change)
        for admitted in message.admitted:
            conn = room.conns.get(admitted.ticket)
            if conn is not None:
                self._admit(room, conn, Claims.of(self.signer.issuer, room.event, admitted.ticket, admitted.admission))
        for ticket in message.finished:
            conn = room.conns.get(ticket)
            if conn is not None:
                conn.close(CloseCode.NOT_WAITING)
        room.fan_out()

    def _on_claim(self, message: messages.Claim) -> None:
        """Only a newer claim replaces a socket: claims cross on the bus, and the older one's must not
        close the newer (see messages.Claim)."""
        room = self.rooms.get(message.event or "")
        conn = room.conns.get(message.ticket) if room else None
        if conn is None or conn.id == message.conn:
            return
        if conn.claimed is None:  # its own claim is not ordered yet: decided when it is
            conn.rival = max(conn.rival or message.order, message.order)
        elif message.order > conn.claimed:
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
