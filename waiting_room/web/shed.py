"""Overload sheds fast: a web process that cannot keep up refuses public API calls at once.

When joins or status polls arrive faster than a web process can answer
them, queueing them only makes every caller wait seconds and then retry
anyway. A join or poll gets `429` with `Retry-After`, from a response built
once, before any routing or Redis work, when

- the event loop is behind (its CPU is saturated: every await of every
  request waits that long again) and more than a few requests are in
  flight, or
- MAX_IN_FLIGHT requests are in flight already (Redis round trips queueing
  behind each other: the batcher sends one batch at a time).

The requests already admitted keep their pace. Loop lag, not latency, is
the signal: a Redis far away makes every answer slow without the process
being overloaded. Operators (`/api/admin/`), probes, pages and sockets are
never refused here.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import Send

MAX_IN_FLIGHT = 512
LAG_PROBE_SECONDS = 0.01  # how often the loop's lag is sampled
LAG_LIMIT_SECONDS = 0.025  # a join takes a few turns of the loop: beyond this, answers take 100 ms and more
# Below this many a lagging loop is busy with something else (a fan-out, a noisy neighbour) and the
# requests in flight still get through in time: refusing them would only make them come back.
MIN_IN_FLIGHT = 64
RETRY_AFTER_SECONDS = 1
SHEDDABLE = ("/api/events/", "/api/tickets/")

_BODY = json.dumps(
    {"error": {"code": "rate_limited", "message": "the waiting room is busy; try again in a second"}}
).encode()
_START = {
    "type": "http.response.start",
    "status": 429,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        (b"cache-control", b"no-store"),
    ],
}
_END = {"type": "http.response.body", "body": _BODY}


class Shed:
    """The policy; web.front asks it before each sheddable request and counts what is in flight."""

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.lag = 0.0  # smoothed lag of the event loop, seconds
        self._probe: asyncio.TimerHandle | None = None

    def _sample(self, due: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.lag = 0.5 * self.lag + 0.5 * max(0.0, now - due)
        self._probe = loop.call_at(now + LAG_PROBE_SECONDS, self._sample, now + LAG_PROBE_SECONDS)

    def overloaded(self) -> bool:
        if self._probe is None:  # the first request starts the probe, in the server's own loop
            self._sample(asyncio.get_running_loop().time())
        if self.in_flight >= self.max_in_flight:
            return True
        return self.lag > LAG_LIMIT_SECONDS and self.in_flight >= MIN_IN_FLIGHT

    @staticmethod
    async def refuse(send: Send) -> None:
        await send(dict(_START))  # a copy: the sender adds its headers to it
        await send(_END)
