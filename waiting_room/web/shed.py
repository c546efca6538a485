"""Overload sheds fast: past a bound of requests in flight, a public API call is refused at once.

When joins or status polls arrive faster than a web process can answer
them, queueing them only makes every caller wait seconds and then retry
anyway. Past MAX_IN_FLIGHT requests in this process (which also bounds the
Redis round trips waiting behind them), a join or poll gets `429` with
`Retry-After` from a response built once, before any parsing, routing or
Redis work; the requests already admitted keep their pace. Operators
(`/api/admin/`), probes, pages and sockets are never refused here.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

# Answers queue behind each other: at a few thousand answers a second per process, 128 in flight keep
# the wait of an admitted request to tens of milliseconds while the CPU stays busy.
MAX_IN_FLIGHT = 128
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
    def __init__(self, app: ASGIApp, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.shed = 0  # requests refused so far (a metric)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SHEDDABLE):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.shed += 1
            await send(_START)
            await send(_END)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
