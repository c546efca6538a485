"""Rank arithmetic: a socket's position without asking Redis every tick.

Admission takes tickets strictly from the head of the line, and
``served_total`` counts every admission. So if a ticket had rank ``r``
(0-based) when ``served_total`` was ``s0``, and ``served_total`` is ``s``
now, at most ``s - s0`` of the ``r`` tickets ahead have left by admission,
and its position is at most ``r + 1 - (s - s0)``. Tickets ahead that left
without admission (abandoned, removed) only make the truth smaller, and
nobody joins ahead of a waiting ticket after opening, so this estimate is
never below the true position. A periodic exact ZRANK (read with
``served_total`` in one MULTI) resets the base, so the estimate is exact
again every few seconds. The pushed value is also kept monotonic: an exact
read can only lower it.
"""

from __future__ import annotations

from dataclasses import dataclass


def estimate(rank: int, served_at_rank: int, served_now: int) -> int:
    """Position (1-based) from a rank read when served_total was `served_at_rank`."""
    return max(1, rank + 1 - max(0, served_now - served_at_rank))


@dataclass
class PositionTracker:
    """One socket's position: the last exact read, and the last value pushed."""

    rank: int | None = None  # None until the ticket has a rank (pre-queue before opening)
    served_at_rank: int = 0
    sent: int | None = None

    def observe(self, rank: int, served: int) -> None:
        """An exact rank, read in the same MULTI as `served`."""
        self.rank, self.served_at_rank = rank, served

    def position(self, served_now: int) -> int | None:
        if self.rank is None:
            return None
        value = estimate(self.rank, self.served_at_rank, served_now)
        return value if self.sent is None else min(value, self.sent)

    def take(self, served_now: int) -> int | None:
        """The position to push now, or None if it has not changed since the last push."""
        value = self.position(served_now)
        if value is None or value == self.sent:
            return None
        self.sent = value
        return value
