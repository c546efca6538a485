"""A web process's sockets, in memory, grouped by event into Rooms (one Conn per socket, web/conn.py).

Nothing here awaits or talks to Redis: the hub feeds these from the bus and
from its reads, and each Conn writes to its socket at once or, while the
socket is backed up, from its drain task. That is what lets the fan-out loop
run over thousands of sockets without ever waiting on a slow one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from waiting_room.core import eta, messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.messages import PositionText
from waiting_room.core.ranks import LineLog
from waiting_room.core.states import EventStatus
from waiting_room.core.tokens import Claims
from waiting_room.web.conn import Conn


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
    target_url: str | None = None  # None until the event's settings are read (see `early`)
    # admissions heard on the bus before the settings were read: sent once they are, with the event's target
    early: list[tuple[Conn, Claims]] = field(default_factory=list)
    log: LineLog = field(default_factory=LineLog)  # the event's last line changes heard on the bus
    stale: set[str] = field(default_factory=set)  # sockets that missed a change: their ranks are read again
    last_read_seq: int = 0  # the event's sequence number at the last heartbeat
    unranked: set[str] = field(default_factory=set)  # pre-queue sockets: ranked as soon as the line opens
    departed: list[str] = field(default_factory=list)  # closed since the last pass: their grace starts now
    beating: bool = False  # this process's heartbeat for the event has been written
    rehold: bool = False  # the promoter took this process for dead: hold every socket again
    _texts: PositionText | None = None  # the current shared parts of position messages

    def add(self, conn: Conn) -> Conn | None:
        """Register a socket; returns the socket it replaces for the same ticket, if any."""
        older = self.conns.get(conn.ticket)
        self.conns[conn.ticket] = conn
        conn.room = self
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

    def position_text(self, conn: Conn, texts: PositionText | None = None) -> str | None:
        """The socket's `position` message, encoded; None if it has nothing new to hear (same place,
        and its ETA still good). `texts`: the room's shared parts, if the caller has them."""
        tracker = conn.tracker
        if tracker.rank is None:  # pre-queue: no place yet, said once; or not read yet: nothing
            if conn.announced or conn.ticket not in self.unranked:
                return None
            conn.announced = True
            return messages.encode(messages.position(None, self.waiting, None, self.served))
        value = tracker.take()
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
        """Every socket's rank brought up to the changes heard (`heard`, inlined), and its new
        position written now, or marked due where the socket is backed up. The common case inline:
        this runs for every socket on every tick."""
        texts = self.texts()
        catch_up, stale = self.log.catch_up, self.stale
        for conn in self.conns.values():
            if conn.closed or conn.admitted or conn.close_code is not None:
                continue
            if not catch_up(conn.tracker) and conn.tracker.rank is not None:
                stale.add(conn.ticket)  # missed a change: read again
            if conn.drain is not None or conn.tracker.rank is None:
                conn.position_changed()  # backed up, or pre-queue: the general path
                continue
            text = self.position_text(conn, texts)
            if text is not None:
                conn.write(text)
