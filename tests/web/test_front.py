"""The layer in front of every request, served by our real server options: X-Forwarded-For and
X-Forwarded-Proto count only from trusted proxies; every answer, a refusal or a crash's included,
carries the security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import websockets
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from support.cluster import write_ed25519_key
from support.serving import servers

from waiting_room.core.proxies import TrustedProxies
from waiting_room.settings import Settings
from waiting_room.web.app import create_app
from waiting_room.web.errors import EXCEPTION_HANDLERS
from waiting_room.web.front import Front
from waiting_room.web.security import HEADERS
from waiting_room.web.shed import Shed


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"client": request.client.host if request.client else None, "scheme": request.url.scheme})


async def whoami_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    client = websocket.client.host if websocket.client else None
    await websocket.send_json({"client": client, "scheme": websocket.url.scheme})
    await websocket.close()


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("a bug")


Start = Callable[[str], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    """Serves a small app behind Front with our options and a given WR_TRUSTED_PROXIES."""
    async with servers() as running:

        async def start(trusted: str) -> str:
            proxies = TrustedProxies(Settings.from_env({"WR_TRUSTED_PROXIES": trusted}).trusted_proxies)
            routes = [Route("/", whoami), Route("/api/boom", boom), WebSocketRoute("/ws", whoami_ws)]
            app = Front(Router(routes), proxies, Shed(), EXCEPTION_HANDLERS)  # as in App: the router behind it
            return f"127.0.0.1:{await running.start(app, lifespan='off')}"

        yield start


async def seen(address: str, headers: dict[str, str]) -> dict[str, str]:
    async with httpx.AsyncClient(trust_env=False) as http:
        body: dict[str, str] = (await http.get(f"http://{address}/", headers=headers)).json()
    return body


@pytest.mark.parametrize(
    ("trusted", "forwarded", "client"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # the default: a proxy on this host
        ("127.0.0.0/8", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # a CIDR; the nearest untrusted hop
        ("127.0.0.0/8, 203.0.113.0/24", "198.51.100.1, 203.0.113.9", "198.51.100.1"),  # past a trusted hop
        ("127.0.0.1", "203.0.113.9:4711", "203.0.113.9"),  # a hop with its port
        ("127.0.0.1", "[2001:db8::7]:4711", "2001:db8::7"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),  # names nobody
        ("10.0.0.0/8", "203.0.113.9", "127.0.0.1"),  # the peer is not a trusted proxy: header ignored
        ("", "203.0.113.9", "127.0.0.1"),  # nobody trusted
        ("*", "198.51.100.1, 203.0.113.9", "198.51.100.1"),  # everyone a proxy: the farthest hop
    ],
)
async def test_forwarded_for_is_honoured_only_from_trusted_proxies(
    serve: Start, trusted: str, forwarded: str | None, client: str
) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    assert (await seen(await serve(trusted), headers))["client"] == client


async def test_forwarded_proto_names_the_scheme_from_a_trusted_proxy_only(serve: Start) -> None:
    trusted, untrusted = await serve("127.0.0.1"), await serve("10.0.0.0/8")
    assert (await seen(trusted, {"X-Forwarded-Proto": "https"}))["scheme"] == "https"
    assert (await seen(trusted, {"X-Forwarded-Proto": "gopher"}))["scheme"] == "http"  # not a scheme we know
    assert (await seen(untrusted, {"X-Forwarded-Proto": "https"}))["scheme"] == "http"


async def test_a_socket_behind_a_trusted_proxy_has_the_client_and_scheme_it_names(serve: Start) -> None:
    address = await serve("127.0.0.1")
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    async with websockets.connect(f"ws://{address}/ws", additional_headers=headers) as ws:
        assert await ws.recv() == '{"client":"203.0.113.9","scheme":"wss"}'


async def test_every_answer_carries_the_security_headers_a_crash_a_503(serve: Start) -> None:
    address = await serve("127.0.0.1")
    async with httpx.AsyncClient(trust_env=False) as http:
        ok, crash = await http.get(f"http://{address}/"), await http.get(f"http://{address}/api/boom")
    assert (ok.status_code, crash.status_code) == (200, 503)
    assert crash.json()["error"]["code"] == "unavailable" and crash.headers["retry-after"] == "2"
    for answer in (ok, crash):
        assert [name.decode() for name, _ in HEADERS if name.decode() not in answer.headers] == []


async def test_a_socket_endpoint_gets_the_servers_own_send(tmp_path: Path) -> None:
    """The hub pushes every position with it: nothing in the app's stack may wrap it (a wrapper is one
    more call per message, tens of thousands a tick)."""
    seen: dict[str, object] = {}

    class Probe:  # an app, not a function: Starlette passes it scope, receive and send as they are
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen["send"] = send

    async def server_send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    write_ed25519_key(tmp_path / "key.pem")
    env = {"WR_REDIS_URL": "redis://127.0.0.1:1/0", "WR_SIGNING_KEY": str(tmp_path / "key.pem")}
    app = create_app(Settings.from_env(env))  # its lifespan (and Redis) never starts
    app.router.routes.insert(0, WebSocketRoute("/probe", Probe()))
    await app({"type": "websocket", "path": "/probe", "headers": [], "client": ("127.0.0.1", 1)}, receive, server_send)
    assert seen["send"] is server_send


async def test_an_exception_is_answered_by_the_handler_of_its_nearest_class_and_a_failing_handler_is_a_503() -> None:
    async def lookup_failed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": {"code": "gone", "message": type(exc).__name__}}, 410)

    async def broken(request: Request, exc: Exception) -> Response:
        raise RuntimeError("the handler itself fails")

    async def missing(request: Request) -> JSONResponse:
        raise KeyError("x")  # a LookupError: its handler answers

    async def odd(request: Request) -> JSONResponse:
        raise ValueError("y")

    routes = [Route("/api/missing", missing), Route("/api/odd", odd)]
    handlers = {LookupError: lookup_failed, ValueError: broken}
    app = Front(Router(routes), TrustedProxies(()), Shed(), handlers)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        gone, failed = await http.get("/api/missing"), await http.get("/api/odd")
    assert (gone.status_code, gone.json()["error"]["message"]) == (410, "KeyError")
    assert (failed.status_code, failed.json()["error"]["code"]) == (503, "unavailable")
    assert gone.headers["x-frame-options"] == failed.headers["x-frame-options"] == "DENY"
