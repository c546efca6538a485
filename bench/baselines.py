"""The floors our web process is measured against, served exactly as `waiting-room web` serves the product.

- `bare`: a Starlette app answering "hello" (the server and framework alone);
- `minimal`: a Starlette endpoint doing one EVALSHA of join.lua (the same keys and arguments as a real
  join) and setting a cookie: what one join can cost at least with one round trip per request.

    python -m bench.baselines bare|minimal --port P [--workers N]     (WR_REDIS_URL for `minimal`)
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from waiting_room.cli.web import serve_app
from waiting_room.core import ids
from waiting_room.core.clients import client_key
from waiting_room.core.proxies import TrustedProxies
from waiting_room.core.tickets import SHUFFLE_RANGE, new_ticket
from waiting_room.settings import Settings
from waiting_room.store.keys import EventKeys
from waiting_room.store.redis_client import connect
from waiting_room.store.scripts import Scripts, source


def bare_app() -> Starlette:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/{path:path}", hello, methods=["GET", "POST"])])


def minimal_app(redis_url: str, proxies: TrustedProxies) -> Starlette:
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = connect(redis_url)
        state["redis"], state["join"] = redis, redis.register_script(source("join"))
        yield
        await redis.aclose()

    async def join(request: Request) -> Response:
        event = request.path_params["event"]
        k = EventKeys(event)
        uid = ids.token_urlsafe(18)
        peer = request.client.host if request.client else None
        named = proxies.client(request.headers.getlist("x-forwarded-for")) if peer and proxies.trusts(peer) else None
        client = client_key(named[0] if named else peer)
        keys, args = Scripts.join_call(
            k,
            new_ticket(event),
            uid,
            ids.randbelow(SHUFFLE_RANGE),
            "",
            ids.token_urlsafe(16),
            client,
            None,
            500,
        )  # no proof of work; the default tick
        reply = (await state["join"](keys, args))[0]  # a batch of one
        if reply[0] != "new":  # the bench resets Redis between runs; a straggler finds no event
            return JSONResponse({"error": {"code": reply[0], "message": reply[0]}}, 404)
        response = JSONResponse({"ticket": reply[1], "position": int(reply[2]) + 1}, 201)
        response.set_cookie("wr_uid", uid, max_age=7 * 86400, httponly=True, samesite="lax")
        return response

    return Starlette(routes=[Route("/api/events/{event}/tickets", join, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=["bare", "minimal"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.app == "bare":
        app = bare_app()
    else:
        assert settings.redis_url, "WR_REDIS_URL is needed"
        app = minimal_app(settings.redis_url, TrustedProxies(settings.trusted_proxies))
    raise SystemExit(serve_app(app, args.host, args.port, args.workers))


if __name__ == "__main__":
    main()
