"""The observed admission rate and the ETA it gives. Pure, no I/O.

The rate is an exponentially weighted moving average of admissions per
minute (half-life 20 s), updated only on ticks where people were still
waiting afterwards: when the line runs empty, admissions are limited by
arrivals, not by the rate, and counting those ticks would make ETAs too
pessimistic. The average is bias-corrected (divided by the weight its
samples have built up, as in Adam), so it is a true mean of the samples
seen so far from the first tick on: without that, a first tick that
happens to admit nobody would drag the rate towards zero for a minute and
make every early ETA many times too long (measured: docs/benchmarks.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HALF_LIFE_SECONDS = 20.0


@dataclass
class ObservedRate:
    per_minute: float | None = None
    _weighted_sum: float = field(default=0.0, repr=False)
    _weight: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if self.per_minute is not None:  # a known rate counts as fully settled
            self._weighted_sum, self._weight = self.per_minute, 1.0

    def update(self, admitted: int, seconds: float, waiting_after: int) -> None:
        if seconds <= 0 or waiting_after == 0:
            return
        if self.per_minute is None and admitted == 0:
            return  # nothing admitted yet: the rate is unknown, not zero (the bucket is still filling)
        sample = admitted / seconds * 60
        keep = math.exp(-seconds * math.log(2) / HALF_LIFE_SECONDS)
        self._weighted_sum = self._weighted_sum * keep + (1 - keep) * sample
        self._weight = self._weight * keep + (1 - keep)
        self.per_minute = self._weighted_sum / self._weight

    def reset(self) -> None:
        self.per_minute, self._weighted_sum, self._weight = None, 0.0, 0.0


def eta_seconds(position: int | None, observed_per_minute: float, admitting: bool) -> int | None:
    """Expected wait; None when unknown (paused, nothing admitted yet, no position)."""
    if not admitting or position is None or observed_per_minute <= 0.01:
        return None
    # position * 60 / rate, not position / (rate / 60): the latter rounds 11 at 11/min up to 61 s
    return max(0, math.ceil(position * 60 / observed_per_minute))


# An ETA a client was told stays good enough until it is off by both this share and this many seconds:
# small drifts are not worth a message to every socket, a stalled line is (its ETA grows without bound).
MATERIAL_SHARE = 0.2
MATERIAL_SECONDS = 10


def eta_moved(told: int | None, now: int | None) -> bool:
    """Whether a client told `told` should be told `now`: it became known or unknown, or moved materially."""
    if told is None or now is None:
        return told != now
    return abs(now - told) >= max(MATERIAL_SECONDS, MATERIAL_SHARE * told)


def rate_moved(told: float | None, now: float | None) -> bool:
    """Whether ETAs at the rate `now` differ by MATERIAL_SHARE or more from those at `told`. An ETA is
    inversely proportional to the rate, so this one comparison decides it for a whole line: the promoter
    publishes on it even when nobody moved (a line stalled on capacity), and each socket then checks
    its own ETA with `eta_moved`."""
    known_told, known_now = (r is not None and r > 0.01 for r in (told, now))
    if known_told != known_now:
        return True
    if told is None or now is None or not known_now:
        return False
    return abs(told / now - 1) >= MATERIAL_SHARE
