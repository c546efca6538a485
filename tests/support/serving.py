"""Apps served by uvicorn on our own server options (cli/web.py: uvicorn_config), each on a free port, and
stopped when the block ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from support.waiting import until
from waiting_room.cli.web import uvicorn_config
from waiting_room.store.embedded import free_port


class Servers:
    def __init__(self) -> None:
        self.running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(self, app: Any, **options: Any) -> int:
        """Serve `app` (`options` override ours, e.g. lifespan="off"); its port once it accepts."""
        port = free_port()
        server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, **options))
        self.running.append((server, asyncio.create_task(server.serve())))
        await until(lambda: server.started, "the server to start")
        return port


@contextlib.asynccontextmanager
async def servers() -> AsyncIterator[Servers]:
    made = Servers()
    try:
        yield made
    finally:
        for server, task in made.running:
            server.should_exit = True
            await task
