"""Per-client join limit, in memory: one greedy client must not flood the line.

A token bucket per client address, generous enough for many people behind
one NAT (and for a whole office joining at the opening), strict enough to
stop a script. Per process: N web processes allow N times as much, which
is fine for its purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_CLIENTS = 100_000  # beyond this, idle buckets are forgotten (they would be full again anyway)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_second: float, burst: float) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def check(self, client: str, now: float) -> float | None:
        """None if `client` may go ahead (and it is counted), else the seconds until it may."""
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:
                self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.per_second

    def _forget_idle(self, now: float) -> None:
        refill = self.burst / self.per_second
        self._buckets = {c: b for c, b in self._buckets.items() if now - b.at < refill}
        if len(self._buckets) >= MAX_CLIENTS:
            self._buckets.clear()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
