"""A web process's sockets, in memory: one Conn per socket, grouped by event into Rooms.

Nothing here awaits or talks to Redis: the hub feeds these from the bus and
from its reads, and each Conn's writer task (``ws.pump``) drains it. That
is what lets the fan-out loop run over thousands of sockets without ever
waiting on a slow one.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from waiting_room.core import eta, messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.ranks import LineLog, PositionTracker
from waiting_room.core.states import CloseCode, EventStatus

MAILBOX_LIMIT = 64  # undeliverable must-send messages before a socket is dropped


class Socket(Protocol):
    """What the hub needs of a WebSocket (Starlette's fits)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(eq=False)
class Conn:
    """One socket's state; mutated only from the event loop, never awaited by the fan-out."""

    ws: Socket
    ticket: str
    event: str
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    tracker: PositionTracker = field(default_factory=PositionTracker)
    mailbox: deque[str] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    position_due: bool = False
    announced: bool = False  # a rankless (pre-queue) position was pushed
    eta_told: int | None = None  # the ETA last pushed: pushed again when it moves materially (core/eta.py)
    admitted: bool = False
    close_code: int | None = None
    claimed: tuple[int, str] | None = None  # this socket's claim order, once its arrival was read
    rival: tuple[int, str] | None = None  # the newest other claim heard before that

    def send(self, message: dict[str, Any]) -> None:
        if len(self.mailbox) >= MAILBOX_LIMIT:
            self.close(CloseCode.GOING_AWAY)
            return
        self.mailbox.append(messages.encode(message))
        self.wake.set()

    def position_changed(self) -> None:
        self.position_due = True
        self.wake.set()

    def close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
        self.wake.set()


@dataclass(eq=False)
class Room:
    """The local sockets of one event and what the hub last heard of it."""

    event: str
    conns: dict[str, Conn] = field(default_factory=dict)
    served: int = 0
    waiting: int = 0
    status: EventStatus = EventStatus.OPEN
    opens_at: float | None = None
    observed_rate: float = 0.0
    target_url: str = ""
    log: LineLog = field(default_factory=LineLog)  # the event's last line changes heard on the bus
    stale: set[str] = field(default_factory=set)  # sockets that missed a change: their ranks are read again
    last_read_seq: int = 0  # the event's sequence number at the last heartbeat
    unranked: set[str] = field(default_factory=set)  # pre-queue sockets: ranked as soon as the line opens
    departed: list[str] = field(default_factory=list)  # closed since the last pass: their grace starts now
    beating: bool = False  # this process's heartbeat for the event has been written
    rehold: bool = False  # the promoter took this process for dead: hold every socket again

    def add(self, conn: Conn) -> Conn | None:
        """Register a socket; returns the socket it replaces for the same ticket, if any."""
        older = self.conns.get(conn.ticket)
        self.conns[conn.ticket] = conn
        return older

    def remove(self, conn: Conn) -> None:
        """Forget a socket (not its replacement)."""
        if self.conns.get(conn.ticket) is conn:
            del self.conns[conn.ticket]
            self.unranked.discard(conn.ticket)
            self.stale.discard(conn.ticket)
            self.departed.append(conn.ticket)

    def take_departed(self) -> list[str]:
        """Tickets whose socket closed and did not come back here since: their holders have left."""
        gone, self.departed = [t for t in dict.fromkeys(self.departed) if t not in self.conns], []
        return gone

    def heard(self, conn: Conn) -> None:
        """Bring a socket's rank up to every change heard; one that missed a change is read again."""
        if not self.log.catch_up(conn.tracker) and conn.tracker.rank is not None:
            self.stale.add(conn.ticket)
        conn.position_changed()

    def published(self, seq: int) -> None:
        """The event's sequence number, read now. A message published before the previous read
        and still unheard was lost: sockets that have not had it are read again."""
        lost, self.last_read_seq = self.last_read_seq, seq
        if self.log.latest is not None and self.log.latest >= lost:
            return
        for conn in self.conns.values():
            if conn.tracker.rank is not None and conn.tracker.seq < lost:
                self.stale.add(conn.ticket)

    def take_stale(self, limit: int) -> list[Conn]:
        batch = list(self.stale)[:limit]
        self.stale.difference_update(batch)
        return [self.conns[t] for t in batch if t in self.conns]

    def due_at_opening(self, now: float, limit: int) -> list[Conn]:
        """Pre-queue sockets to rank now that the line is open (a batch per pass): the shuffle is done,
        and they should see their place at once (read once; the bus keeps it exact from then on)."""
        if not self.unranked or (self.opens_at is not None and now < self.opens_at):
            return []
        due = [self.conns[t] for t in list(self.unranked)[:limit] if t in self.conns]
        self.unranked.difference_update(c.ticket for c in due)
        return due

    def apply_settings(self, settings: EventSettings) -> None:
        self.status, self.opens_at, self.target_url = settings.status, settings.opens_at, settings.target_url

    def position_message(self, conn: Conn) -> dict[str, Any] | None:
        if conn.tracker.rank is None:  # pre-queue: no place yet, said once
            if conn.announced:
                return None
            conn.announced = True
            return messages.position(None, self.waiting, None, self.served)
        value = conn.tracker.take()
        position = conn.tracker.sent if value is None else value
        eta_now = eta.eta_seconds(position, self.observed_rate, self.status is EventStatus.OPEN)
        if value is None and not eta.eta_moved(conn.eta_told, eta_now):  # same place, ETA still good
            return None
        conn.eta_told = eta_now
        return messages.position(position, self.waiting, eta_now, self.served)
