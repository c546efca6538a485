"""The server options of `waiting-room web`: X-Forwarded-For names the client only from trusted proxies."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from support.waiting import until

from waiting_room.cli.web import uvicorn_config
from waiting_room.settings import Settings
from waiting_room.store.embedded import free_port


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"client": request.client.host if request.client else None})


Start = Callable[[str], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    """Starts servers with our options and a given WR_TRUSTED_PROXIES; stops them after the test."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(trusted: str) -> str:
        port = free_port()
        settings = Settings.from_env({"WR_TRUSTED_PROXIES": trusted})
        app = Starlette(routes=[Route("/", whoami)])
        server = uvicorn.Server(uvicorn_config(app, settings, "127.0.0.1", port, lifespan="off"))
        servers.append((server, asyncio.create_task(server.serve())))
        await until(lambda: server.started, "the server to start")
        return f"http://127.0.0.1:{port}/"

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


async def client_seen(url: str, forwarded: str | None) -> str:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    async with httpx.AsyncClient(trust_env=False) as http:
        body = (await http.get(url, headers=headers)).json()
    return str(body["client"])


@pytest.mark.parametrize(
    ("trusted", "forwarded", "seen"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # the default: a proxy on this host
        ("127.0.0.0/8", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # a CIDR; the nearest untrusted hop
        ("127.0.0.1", None, "127.0.0.1"),
        ("10.0.0.0/8", "203.0.113.9", "127.0.0.1"),  # the peer is not a trusted proxy: header ignored
        ("", "203.0.113.9", "127.0.0.1"),  # nobody trusted
    ],
)
async def test_forwarded_for_is_honoured_only_from_trusted_proxies(
    serve: Start, trusted: str, forwarded: str | None, seen: str
) -> None:
    assert await client_seen(await serve(trusted), forwarded) == seen


def test_the_server_freezes_what_startup_built_before_it_serves() -> None:
    """A full garbage collection that walks the whole app stalls every request (joins' p99 went from ~50 ms
    to ~11 ms without it); serve_app freezes the startup objects out of the collector's way first."""
    probe = (
        "import gc, uvicorn\n"
        "from starlette.applications import Starlette\n"
        "from waiting_room.cli.web import serve_app\n"
        "from waiting_room.settings import Settings\n"
        "uvicorn.Server.run = lambda self: print('frozen', gc.get_freeze_count())\n"  # report instead of serving
        "serve_app(Starlette(), Settings.from_env({}), '127.0.0.1', 0, 1)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout.split()[-1]) > 1000, out.stdout + out.stderr
