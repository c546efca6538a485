"""Text frames written straight to a socket's transport, on our real server options: byte for byte what
websockets would send, in order with what goes through `send`, and never once the socket is closing or its
transport is paused."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import websockets
from starlette.types import Receive, Scope, Send
from support.serving import servers
from support.waiting import until
from websockets.frames import Frame, Opcode

from waiting_room.web.frames import DirectText, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 70_000])
def test_a_frame_is_what_websockets_would_send(size: int) -> None:
    text = ("é" * size)[:size] if size % 2 else "p" * size
    assert text_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])


Endpoint = Callable[[Scope, Receive, Send], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Endpoint], Awaitable[int]]]:
    async with servers() as running:
        yield lambda endpoint: running.start(endpoint, lifespan="off")


async def test_frames_and_asgi_sends_arrive_in_order_and_none_after_the_close(serve: Any) -> None:
    said: dict[str, object] = {}

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        direct = DirectText.of(send)
        assert direct is not None, "our server options no longer allow direct frames"
        said["first"] = direct.write("one")
        await send({"type": "websocket.send", "text": "two"})
        said["long"] = direct.write("x" * 300)
        await send({"type": "websocket.close", "code": 1000})
        said["after close"] = direct.write("never")

    port = await serve(endpoint)
    async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
        got = [message async for message in ws]
    assert got == ["one", "two", "x" * 300]
    assert said == {"first": True, "long": True, "after close": False}


async def test_a_paused_transport_takes_no_frame(serve: Any) -> None:
    """A client that stops reading: the kernel's buffers fill, uvicorn pauses the transport, and from
    then on `write` says no (the caller's ASGI send then waits for it, web/conn.py)."""
    outcome: dict[str, object] = {}

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        direct = DirectText.of(send)
        assert direct is not None
        chunk = "z" * 60_000
        for written in range(2_000):  # 120 MB at most: far past any socket buffer
            if not direct.write(chunk):
                outcome["refused after"] = written
                break
            await asyncio.sleep(0)
        outcome["writable"] = send.__self__.writable.is_set()  # type: ignore[attr-defined]

    port = await serve(endpoint)
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.sendall(
        b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        await until(lambda: "writable" in outcome, "the endpoint to stop writing", within=30)
    finally:
        raw.close()
    assert outcome["writable"] is False and 0 < int(str(outcome["refused after"])) < 2_000
