"""A WebSocket client for /ws/tickets/{ticket} that records every message with its arrival time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .waiting import until


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    connection: int  # 0 for the first connection of this client, 1 after a reconnect, ...
    data: dict[str, Any]


class WsClient:
    def __init__(self, url: str, ticket: str, origin: str | None) -> None:
        self.url = url
        self.ticket = ticket
        self.origin = origin
        self.received: list[Received] = []
        self.connection = -1
        self.close_code: int | None = None
        self.handshakes: list[dict[str, str]] = []  # the server's handshake response headers, per connection
        self._conn: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> WsClient:
        self.close_code = None
        conn = await connect(
            self.url,
            origin=self.origin,
            compression=None,
            proxy=None,  # type: ignore[arg-type]
            open_timeout=10,
            ping_interval=None,
            close_timeout=2,
            max_size=None,
        )
        self.connection += 1
        assert conn.response is not None
        self.handshakes.append({k.lower(): v for k, v in conn.response.headers.raw_items()})
        self._conn = conn
        self._reader = asyncio.create_task(self._read(conn, self.connection))
        return self

    async def reconnect(self, within: float = 20.0) -> WsClient:
        """Retry until a (restarting) web process accepts the socket again."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await self.connect()
            except (OSError, TimeoutError, InvalidHandshake):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def _read(self, conn: ClientConnection, number: int) -> None:
        try:
            async for raw in conn:
                data = json.loads(raw)
                self.received.append(Received(time.monotonic(), number, data))
        except ConnectionClosed:
            pass
        finally:
            self.close_code = conn.close_code if conn.close_code is not None else 1006

    @property
    def open(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def send(self, data: str | bytes) -> None:
        assert self._conn is not None
        with contextlib.suppress(ConnectionClosed):
            await self._conn.send(data)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    async def closed(self, within: float = 10.0) -> int | None:
        """Wait for the server to end the socket; its close code."""
        await until(lambda: not self.open, f"the server to close the socket of {self.ticket}", within)
        return self.close_code

    def of(self, kind: str, connection: int | None = None) -> list[Received]:
        return [m for m in self.received if m.data.get("type") == kind and connection in (None, m.connection)]

    def positions(self, connection: int | None = None) -> list[int | None]:
        return [m.data["position"] for m in self.of("position", connection)]

    def ranks(self, connection: int | None = None) -> list[int]:
        """The positions pushed, all of which must be numbers (the ticket is not in the pre-queue)."""
        found = self.positions(connection)
        assert all(isinstance(p, int) for p in found), f"{self.ticket}: positions {found}"
        return [p for p in found if p is not None]

    @property
    def admitted(self) -> Received | None:
        found = self.of("admitted")
        return found[0] if found else None

    async def wait_for(self, kind: str, within: float = 15.0, connection: int | None = None) -> Received:
        def arrived() -> bool:
            if self.of(kind, connection):
                return True
            assert self.open, (
                f"socket of {self.ticket} closed ({self.close_code}) before a {kind!r} message: "
                f"{[m.data.get('type') for m in self.received]}"
            )
            return False

        await until(arrived, f"a {kind!r} message on the socket of {self.ticket}", within)
        return self.of(kind, connection)[0]


async def close_all(clients: list[WsClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
