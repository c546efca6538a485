"""One write per small response: the status line and headers wait for the body.

uvicorn writes a response's head as soon as the app starts it and the body when
the app sends it: two send() system calls, and two wake-ups of the client,
for an answer of a few hundred bytes. A join's answer is one such; the two
writes were a tenth of a join's CPU. Each request's cycle gets a transport
that holds the head back and sends it with the first body write, which in
Starlette comes in the same turn of the event loop. A head with nothing
after it in that turn (a 100 Continue, a stream that waits for its first
event) goes out on the next turn by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any


class HeldHead:
    __slots__ = ("_held", "_loop", "_through", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""
        self._through = False  # the head is out: everything now goes straight through

    def write(self, data: bytes) -> None:
        if self._through:
            self._transport.write(data)
        elif self._held:
            self._through = True
            self._transport.write(self._held + data)
        else:
            self._held = data
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        if not self._through and self._held:
            self._through = True
            self._transport.write(self._held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


def hold_heads(base: type[Any]) -> type[Any]:
    """uvicorn's httptools protocol, its request cycles writing through a HeldHead (other protocols as
    they are: they build their cycles elsewhere)."""
    if not hasattr(base, "on_headers_complete"):
        return base

    class HoldingHeads(base):  # type: ignore[misc]
        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and not isinstance(cycle.transport, HeldHead):  # a new cycle: not started yet
                cycle.transport = HeldHead(self.transport, self.loop)

    return HoldingHeads
