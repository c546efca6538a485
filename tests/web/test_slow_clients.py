"""Connections that never finish their request head are dropped by the server; a served request, a kept
alive connection and an open WebSocket are not. Counted over raw sockets against a real web process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import pytest
from support.cluster import Cluster, running
from support.waiting import until

from waiting_room.web.head_deadline import HEAD_TIMEOUT_SECONDS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

STALLED = {  # what each kind of slow client sends, then nothing more
    "nothing": b"",
    "half a request line": b"GET /heal",
    "a line and half the headers": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag",
    "half of a websocket handshake": b"GET /ws/tickets/x HTTP/1.1\r\nUpgrade: websocket\r\n",
}
EACH = 30
CLOSED_WITHIN = HEAD_TIMEOUT_SECONDS * 4  # generous: liveness, not speed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("slow"), webs=1, promoters=1) as made:
        yield made


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes (EOF or reset); anything it sends before (a 400, say) is read past."""
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass
    return True


async def test_stalled_request_heads_are_closed_and_live_connections_kept(cluster: Cluster) -> None:
    c = cluster
    c.put_event("slow", status="paused")
    ticket = c.join("slow")["ticket"]
    socket = await c.ws(ticket).connect()
    port = c.ports[0]
    opened: list[tuple[str, asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for kind, data in STALLED.items():
            for _ in range(EACH):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(data)
                await writer.drain()
                opened.append((kind, reader, writer))
        # a kept-alive client that finished one request and then starts another, slowly
        keep_reader, keep_writer = await asyncio.open_connection("127.0.0.1", port)
        keep_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await keep_writer.drain()
        assert (await keep_reader.readline()).startswith(b"HTTP/1.1 200")
        keep_writer.write(b"GET /hea")
        opened.append(("half a second request", keep_reader, keep_writer))

        waits = [asyncio.create_task(asyncio.wait_for(closed_by_server(r), CLOSED_WITHIN)) for _, r, _ in opened]
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        still_open = [kind for (kind, _, _), outcome in zip(opened, outcomes, strict=True) if outcome is not True]
        assert still_open == [], f"{len(still_open)} of {len(opened)} stalled connections were kept"

        assert socket.open, "the guard closed a WebSocket that was serving"
        await asyncio.to_thread(c.set_status, "slow", "open")
        await until(lambda: socket.admitted is not None, "the open socket to hear of its admission")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert json.loads((await reader.read()).split(b"\r\n\r\n", 1)[1]) == {"status": "ok"}
        writer.close()
    finally:
        for _, _, writer in opened:
            writer.close()
        with contextlib.suppress(Exception):
            await socket.close()
