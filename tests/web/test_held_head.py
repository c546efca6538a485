"""A small response leaves in one write; a head with nothing after it still leaves, on the next turn."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from support.serving import servers

from waiting_room.cli.web import uvicorn_config
from waiting_room.web.held_head import HeldHead


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_head_and_body_written_in_one_turn_leave_together() -> None:
    transport = Recorder()
    held = HeldHead(cast(asyncio.Transport, transport), asyncio.get_running_loop())
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    held.write(b"body")
    held.write(b"more")
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]


async def test_a_head_alone_leaves_on_the_next_turn_and_close_sends_what_is_held() -> None:
    transport = Recorder()
    held = HeldHead(cast(asyncio.Transport, transport), asyncio.get_running_loop())
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    second = HeldHead(cast(asyncio.Transport, transport), asyncio.get_running_loop())
    second.write(b"head")
    second.close()
    assert transport.writes[-1] == b"head" and transport.closed and second.is_closing()
    await asyncio.sleep(0)
    assert transport.writes.count(b"head") == 1


async def _serve_and_read(app: Any, request: bytes) -> list[bytes]:
    """What a raw client receives, read by read (each read ends when the server pauses)."""
    async with servers() as running:
        port = await running.start(app)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        chunks = []
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            chunks.append(chunk)
        writer.close()
        return chunks


async def test_a_real_server_answers_in_one_piece_and_streams_still_flow() -> None:
    async def small(_: Request) -> Response:
        return PlainTextResponse("hello")

    async def stream(_: Request) -> Response:
        async def parts() -> Any:
            yield b"first"
            await asyncio.sleep(0.2)
            yield b"second"

        return StreamingResponse(parts())

    app = Starlette(routes=[Route("/small", small), Route("/stream", stream)])
    whole = await _serve_and_read(app, b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert len(whole) == 1 and whole[0].startswith(b"HTTP/1.1 200") and whole[0].endswith(b"hello")
    streamed = b"".join(await _serve_and_read(app, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert b"first" in streamed and b"second" in streamed and streamed.index(b"first") < streamed.index(b"second")


def test_the_server_options_use_it() -> None:
    config = uvicorn_config(None, "127.0.0.1", 1)
    assert any(cls.__name__ == "HoldingHeads" for cls in cast(type, config.http).__mro__)
