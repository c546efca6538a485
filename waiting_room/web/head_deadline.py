"""A deadline for the request head: a connection that has not finished sending its request line and
headers within HEAD_TIMEOUT_SECONDS of connecting (or of starting its next request) is closed.

uvicorn times out idle keep-alive connections, but not one that never completes its first request,
nor one that sends half of its next one: a few hundred such sockets (slowloris) would hold file
descriptors and memory forever. The guard is a subclass of whichever HTTP protocol uvicorn would pick,
so it sees the same parser; it stands down once a request is being served or the connection became a
WebSocket (then the socket's own rules apply).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from waiting_room.web.held_head import hold_heads

HEAD_TIMEOUT_SECONDS = 10.0


def head_deadline_protocol(http: str = "auto", timeout: float = HEAD_TIMEOUT_SECONDS) -> type[asyncio.Protocol]:
    base: Any = hold_heads(import_from_string(HTTP_PROTOCOLS.get(http, http)))

    class HeadDeadline(base):  # type: ignore[misc]
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.get_protocol() is not self or self._serving():
                self._disarm()
            elif self._deadline is None:  # the first bytes of a next request on a kept-alive connection
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _serving(self) -> bool:
            cycle = self.cycle
            return cycle is not None and not cycle.response_complete

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self._serving() and self.transport.get_protocol() is self and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadline
