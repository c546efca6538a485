"""Per-client join limit, in memory: one greedy client must not flood the line.

A token bucket per client address, generous enough for many people behind
one NAT (and for a whole office joining at the opening), strict enough to
stop a script. Per process: N web processes allow N times as much, which
is fine for its purpose.

At most MAX_CLIENTS buckets are kept, least recently used first out: a sale's
opening brings a new address with nearly every join, and forgetting them in
one sweep once the table filled stalled every request of the process (a
pass over 100,000 buckets) every 100,000 joins. A forgotten bucket is a
full one, which is what an idle client's bucket would be anyway.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

MAX_CLIENTS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_second: float, burst: float, max_clients: int = MAX_CLIENTS) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, client: str, now: float) -> float | None:
        """None if `client` may go ahead (and it is counted), else the seconds until it may."""
        buckets = self._buckets
        bucket = buckets.get(client)
        if bucket is None:
            if len(buckets) >= self.max_clients:
                buckets.popitem(last=False)
            bucket = buckets[client] = _Bucket(self.burst, now)
        else:
            buckets.move_to_end(client)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.per_second

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
