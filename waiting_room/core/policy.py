"""Admission policy: how many tickets may go in this tick. Pure, no I/O.

The rate is a token bucket kept by the leading promoter in memory. It fills
at ``rate_per_minute`` and holds at most one tick's share plus one ticket,
so a promoter that was slow, paused or just took over never lets a burst
through: over any window, admissions stay within the rate plus one tick's
share (plus one for whole tickets), and one tick never admits more than its
share rounded up. The extra ticket is room for the fraction a tick leaves
over when it admits whole tickets: a cap of exactly one share throws that
fraction away every tick, and 100/min at 500 ms ticks (0.83 a tick) would
admit 60/min. A new leader starts with an empty bucket, which keeps the
bound across a failover. Capacity (``max_active``) is enforced inside the
promote script, where it is read atomically with the admission.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def tick_share(rate_per_minute: float, tick_seconds: float) -> float:
    return rate_per_minute / 60 * tick_seconds


@dataclass
class TokenBucket:
    tokens: float = 0.0
    at: float | None = None  # monotonic seconds of the last refill
    per_tick: int = 1  # the most one tick admits: its share, rounded up

    def refill(self, now: float, rate_per_minute: float, tick_seconds: float) -> None:
        share = tick_share(rate_per_minute, tick_seconds)
        # round() first: 2.0000000000000004 is a share of two, not three
        self.per_tick = max(1, math.ceil(round(share, 9)))
        if self.at is not None and now > self.at:
            self.tokens = min(share + 1.0, self.tokens + rate_per_minute / 60 * (now - self.at))
        self.at = now

    def budget(self) -> int:
        """Whole tickets this tick may admit."""
        return min(int(self.tokens), self.per_tick)

    def spend(self, admitted: int) -> None:
        self.tokens = max(0.0, self.tokens - admitted)

    def reset(self, now: float) -> None:
        """Empty: while an event is paused or not led by us, nothing accrues."""
        self.tokens, self.at = 0.0, now
