"""Rank arithmetic: every socket's exact position, kept in memory from the bus.

A waiting ticket's rank changes only when something ahead of it leaves the
line, and only the promoter makes things leave: admissions and the removal
of a closed line pop from the head; abandoned tickets are removed from
anywhere. Joins after opening append behind everyone, and pre-queue tickets
have no position until the opening, when their rank is read. So each
`advance` says what left (``popped`` from the head, the order scores of the
tickets ``gone`` from anywhere) and carries the event's sequence number;
with a rank ``r`` and order score ``s`` read at sequence ``q``, each later
change gives

    r' = r - popped - #{g in gone : g < s}

which is exact when every change after ``q`` was applied once, in order, and
never below the truth when some were missed (each applied change only
removes tickets that really were ahead). A missed change shows as a gap in
the sequence; the hub then re-reads those ranks, and the pushed value stays
monotonic: a fresh read can only lower it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

LOG_SIZE = 256  # changes a room keeps, so a read that crossed a few messages catches up without reading again


@dataclass(frozen=True, slots=True)
class LineChange:
    """What one `advance` took out of the line."""

    seq: int
    popped: int = 0  # from the head
    gone: tuple[int, ...] = ()  # order scores removed from anywhere, sorted

    @classmethod
    def of(cls, seq: int, popped: int = 0, gone: Iterable[int | float | str] = ()) -> LineChange:
        return cls(seq, popped, tuple(sorted(order(g) for g in gone)))

    def rank_after(self, rank: int, score: int) -> int:
        """The rank (0-based) of a ticket still waiting after this change."""
        return max(0, rank - self.popped - bisect_left(self.gone, score))


def order(score: int | float | str) -> int:
    """An order score as Redis or cjson spells it ("1099511627777", 1.099511627777e12) -> int."""
    return int(float(score)) if not isinstance(score, int) else score


@dataclass(slots=True)
class PositionTracker:
    """One socket's rank, the line state (sequence number) it describes, and the last value pushed.
    Slotted: one per socket, read on every tick (a __dict__ was ~300 bytes of each socket's memory)."""

    rank: int | None = None  # None until the ticket has a rank (pre-queue before opening)
    score: int = 0
    seq: int = 0
    sent: int | None = None

    def observe(self, rank: int, score: int, seq: int) -> None:
        """An exact rank and score, read in one MULTI with the event's sequence number `seq`."""
        self.rank, self.score, self.seq = rank, score, seq

    def apply(self, change: LineChange) -> None:
        """One change after this tracker's state (the caller keeps the order; see LineLog)."""
        if change.seq <= self.seq:
            return
        if self.rank is not None:
            self.rank = change.rank_after(self.rank, self.score)
        self.seq = change.seq

    def position(self) -> int | None:
        if self.rank is None:
            return None
        value = self.rank + 1
        return value if self.sent is None else min(value, self.sent)

    def take(self) -> int | None:
        """The position to push now, or None if it has not changed since the last push."""
        value = self.position()
        if value is None or value == self.sent:
            return None
        self.sent = value
        return value


@dataclass
class LineLog:
    """The last changes of one event a process heard, in sequence order."""

    changes: deque[LineChange] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    latest: int | None = None  # highest sequence number heard

    def add(self, change: LineChange) -> bool:
        """Record a change; False if it is old news (already heard)."""
        if self.latest is not None and change.seq <= self.latest:
            return False
        self.changes.append(change)
        self.latest = change.seq
        return True

    def catch_up(self, tracker: PositionTracker) -> bool:
        """Apply to `tracker` every change it has not had; False if one is missing (read it again).

        Whatever is missing, what was applied keeps the rank at or above the truth."""
        changes = self.changes
        if not changes or changes[-1].seq <= tracker.seq:
            return True
        if len(changes) == 1 or changes[-2].seq <= tracker.seq:  # every tick, for every socket: only the last
            last = changes[-1]
            whole = last.seq == tracker.seq + 1
            tracker.apply(last)
            return whole
        whole = True
        for change in changes:  # a tracker that fell behind (read before a few messages arrived)
            if change.seq <= tracker.seq:
                continue
            whole = whole and change.seq == tracker.seq + 1
            tracker.apply(change)
        return whole
