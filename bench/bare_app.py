"""The floor: a bare Starlette app served exactly as `waiting-room web` serves the product, holding sockets.

`python -m bench.bare_app --port P --tick-ms T` serves `/ws/tickets/{anything}`:
each socket is accepted, kept in a set and echoes what it receives. After
`POST /start` a loop sends one position-shaped message to every socket each
tick with a plain `await ws.send_text(...)`, the simplest fan-out Python
and Starlette allow; `POST /stop` ends it. Before `/start` it is the bare
echo app whose memory per socket is the baseline for ours.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.common import raise_nofile
from waiting_room.cli.web import serve_app


def position(served: int) -> str:
    """The same fields and about the same length as the product's `position`."""
    body = {"type": "position", "position": 1234, "waiting": 19500, "eta_seconds": 321, "served_total": served}
    return json.dumps(body, separators=(",", ":"))


def create_app(tick_seconds: float) -> Starlette:
    sockets: set[WebSocket] = set()
    ticking: list[asyncio.Task[None]] = []

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(position(0))  # as ours tells a new socket its place
        sockets.add(ws)
        try:
            while True:
                await ws.send_text(await ws.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            sockets.discard(ws)

    async def tick_loop() -> None:
        served = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            served += 1
            text = position(served)
            for ws in list(sockets):
                with contextlib.suppress(Exception):
                    await ws.send_text(text)
            next_at += tick_seconds
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def start(_: Request) -> PlainTextResponse:
        if not ticking:
            ticking.append(asyncio.create_task(tick_loop()))
        return PlainTextResponse(str(len(sockets)))

    async def stop(_: Request) -> PlainTextResponse:
        while ticking:
            ticking.pop().cancel()
        return PlainTextResponse(str(len(sockets)))

    async def ready(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        for task in ticking:
            task.cancel()

    routes = [
        WebSocketRoute("/ws/tickets/{ticket}", endpoint),
        Route("/start", start, methods=["POST"]),
        Route("/stop", stop, methods=["POST"]),
        Route("/readyz", ready),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tick-ms", type=int, default=500)
    args = parser.parse_args()
    raise_nofile()
    # exactly `waiting-room web`'s server options (waiting_room/cli/web.py)
    raise SystemExit(serve_app(create_app(args.tick_ms / 1000), args.host, args.port, 1))


if __name__ == "__main__":
    main()
