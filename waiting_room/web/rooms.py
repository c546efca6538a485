"""A web process's sockets, in memory, grouped by event into Rooms (one Conn per socket, web/conn.py).

Nothing here awaits or talks to Redis: the hub feeds these from the bus and
from its reads, and each Conn writes to its socket at once or, while the
socket is backed up, from its drain task. That is what lets the fan-out loop
run over thousands of sockets without ever waiting on a slow one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from waiting_room.core import eta, messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.messages import PositionText
from waiting_room.core.states import EventStatus
from waiting_room.web.conn import Conn

REFRESH_SECONDS = 5.0  # every socket's rank is read exactly at least this often
MIN_REFRESH_SECONDS = 0.25  # ... and at most this often, however short abandon_after_seconds is


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
    rotation: deque[str] = field(default_factory=deque)  # tickets in the order their ranks are re-read
    _rotating: set[str] = field(default_factory=set)  # what `rotation` holds, so it never holds twice
    unranked: set[str] = field(default_factory=set)  # pre-queue sockets: ranked as soon as the line opens
    departed: list[str] = field(default_factory=list)  # closed since the last pass: their grace starts now
    abandon_after: float = 120.0
    _texts: PositionText | None = None  # the current shared parts of position messages

    def add(self, conn: Conn) -> Conn | None:
        """Register a socket; returns the socket it replaces for the same ticket, if any."""
        older = self.conns.get(conn.ticket)
        self.conns[conn.ticket] = conn
        conn.room = self
        if conn.ticket not in self._rotating:
            self._rotating.add(conn.ticket)
            self.rotation.append(conn.ticket)
        return older

    def remove(self, conn: Conn) -> None:
        """Forget a socket (not its replacement); the rotation drops it lazily."""
        if self.conns.get(conn.ticket) is conn:
            del self.conns[conn.ticket]
            self.unranked.discard(conn.ticket)
            self.departed.append(conn.ticket)

    @property
    def refresh_seconds(self) -> float:
        """How often each socket's rank, and so its seen mark, is re-read: REFRESH_SECONDS, or often
        enough that a holder with a socket open is never taken for gone under a short abandon_after."""
        return max(MIN_REFRESH_SECONDS, min(REFRESH_SECONDS, self.abandon_after / 4))

    def due_at_opening(self, now: float, limit: int) -> list[Conn]:
        """Pre-queue sockets to rank now that the line is open (a batch per pass), rather than waiting
        for their turn in the rotation: the shuffle is done, and they should see their place at once."""
        if not self.unranked or (self.opens_at is not None and now < self.opens_at):
            return []
        due = [self.conns[t] for t in list(self.unranked)[:limit] if t in self.conns]
        self.unranked.difference_update(c.ticket for c in due)
        return due

    def apply_settings(self, settings: EventSettings) -> None:
        self.status, self.opens_at, self.target_url = settings.status, settings.opens_at, settings.target_url
        self.abandon_after = settings.abandon_after_seconds

    def position_text(self, conn: Conn, texts: PositionText | None = None) -> str | None:
        """The socket's `position` message, encoded; None if it has nothing new to hear (same place,
        and its ETA still good). `texts`: the room's shared parts, if the caller has them."""
        tracker = conn.tracker
        if tracker.rank is None:  # pre-queue: no place yet, said once; or not read yet: nothing
            if conn.announced or conn.ticket not in self.unranked:
                return None
            conn.announced = True
            return messages.encode(messages.position(None, self.waiting, None, self.served))
        value = tracker.take(self.served)
        position = tracker.sent if value is None else value
        eta_now = eta.eta_seconds(position, self.observed_rate, self.status is EventStatus.OPEN)
        if value is None and not eta.eta_moved(conn.eta_told, eta_now):  # same place, ETA still good
            return None
        conn.eta_told = eta_now
        assert position is not None  # (a ranked tracker has pushed or now pushes a position)
        return (texts or self.texts()).text(position, eta_now)

    def texts(self) -> PositionText:
        """The shared parts of position messages now (rebuilt only when what they share changed)."""
        texts = self._texts
        if texts is None or not texts.fits(self.waiting, self.served):
            texts = self._texts = PositionText(self.waiting, self.served)
        return texts

    def fan_out(self) -> None:
        """Every socket's new position, written now, or marked due where the socket is backed up. The
        common case inline: this runs for every socket on every tick."""
        texts = self.texts()
        for conn in self.conns.values():
            if conn.closed or conn.admitted or conn.close_code is not None:
                continue
            if conn.drain is not None or conn.tracker.rank is None:
                conn.position_changed()  # backed up, or pre-queue: the general path
                continue
            text = self.position_text(conn, texts)
            if text is not None:
                conn.write(text)

    def refresh_slice(self, seconds: float) -> list[Conn]:
        """The next few sockets whose rank to read, so each is read every `refresh_seconds`."""
        size = math.ceil(len(self.conns) * seconds / self.refresh_seconds)
        picked: list[Conn] = []
        for _ in range(len(self.rotation)):  # each entry at most once; departed ones are dropped on the way
            if len(picked) >= size:
                break
            ticket = self.rotation.popleft()
            conn = self.conns.get(ticket)
            if conn is None:
                self._rotating.discard(ticket)
            else:
                self.rotation.append(ticket)
                picked.append(conn)
        return picked
