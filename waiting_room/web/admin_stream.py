"""WebSocket /ws/admin: the dashboard's live numbers, pushed every second.

A browser cannot put an Authorization header on a WebSocket, and a token in
the URL would land in access logs, so the first client message carries it:
`{"token": "..."}`, compared in constant time. Anything else, or nothing
within AUTH_TIMEOUT_SECONDS, closes with 4401. There are a handful of
operators, so each socket runs its own one-second loop over the event stats
(a few pipelined reads per event) rather than sharing a fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from redis.exceptions import RedisError
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from waiting_room.core.states import CloseCode
from waiting_room.store.events import Events
from waiting_room.web.admin import token_ok
from waiting_room.web.state import app_state
from waiting_room.web.ws import accept, text_of

log = logging.getLogger(__name__)

AUTH_TIMEOUT_SECONDS = 5.0
PUSH_INTERVAL_SECONDS = 1.0


async def _first_token(ws: WebSocket) -> Any:
    """The `token` of the first message, or None if it is missing, malformed or late."""
    try:
        message = await asyncio.wait_for(ws.receive(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError:
        return None
    try:
        body = json.loads(text_of(message))
    except ValueError:
        return None
    return body.get("token") if isinstance(body, dict) else None


async def snapshot(events: Events) -> dict[str, Any]:
    return {"type": "stats", "at": round(time.time(), 3), "events": await events.overview()}


async def admin_socket(ws: WebSocket) -> None:
    wr = app_state(ws)
    if not await accept(ws):
        return
    if not token_ok(await _first_token(ws), wr.settings.admin_token):
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may already be gone
            await ws.close(CloseCode.UNAUTHORIZED, "unauthorized")
        return
    pusher = asyncio.create_task(_push(ws, wr.events))
    reader = asyncio.create_task(_drain(ws))
    try:
        await asyncio.wait({pusher, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pusher, reader):
            task.cancel()
        await asyncio.gather(pusher, reader, return_exceptions=True)


async def _push(ws: WebSocket, events: Events) -> None:
    """One snapshot a second on a drift-free clock; a Redis outage is said, not fatal."""
    next_at = time.monotonic()
    while True:
        try:
            message = await snapshot(events)
        except (RedisError, OSError) as exc:
            log.warning("admin stream: redis unavailable: %s", exc)
            message = {
                "type": "unavailable",
                "at": round(time.time(), 3),
                "message": "Redis is not answering; the numbers are stale",
            }
        await ws.send_text(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
        next_at += PUSH_INTERVAL_SECONDS
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _drain(ws: WebSocket) -> None:
    """Until the browser leaves; what it sends after the token is ignored."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


routes = [WebSocketRoute("/ws/admin", admin_socket)]
