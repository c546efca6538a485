"""The observed admission rate and the ETA it gives. Pure, no I/O.

The rate is an exponentially weighted moving average of admissions per
minute over ~30 s, updated only on ticks where people were still waiting
afterwards: when the line runs empty, admissions are limited by arrivals,
not by the rate, and counting those ticks would make ETAs too pessimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HALF_LIFE_SECONDS = 20.0


@dataclass
class ObservedRate:
    per_minute: float | None = None

    def update(self, admitted: int, seconds: float, waiting_after: int) -> None:
        if seconds <= 0 or waiting_after == 0:
            return
        sample = admitted / seconds * 60
        if self.per_minute is None:
            self.per_minute = sample
            return
        weight = 1 - math.exp(-seconds * math.log(2) / HALF_LIFE_SECONDS)
        self.per_minute += weight * (sample - self.per_minute)

    def reset(self) -> None:
        self.per_minute = None


def eta_seconds(position: int | None, observed_per_minute: float, admitting: bool) -> int | None:
    """Expected wait; None when unknown (paused, nothing admitted yet, no position)."""
    if not admitting or position is None or observed_per_minute <= 0.01:
        return None
    # position * 60 / rate, not position / (rate / 60): the latter rounds 11 at 11/min up to 61 s
    return max(0, math.ceil(position * 60 / observed_per_minute))
