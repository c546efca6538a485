"""WebSocket /ws/tickets/{ticket}: the server pushes; the client need send nothing.

The handshake is accepted for any well-formed request, then refused with a
close code the page can act on (CloseCode says which ones to reconnect
after). Client messages are read only to enforce the rules: over 1 KiB is
closed by the server's frame limit (1009), anything not JSON gets 4400.
"""

from __future__ import annotations

import asyncio
import json
import logging

from redis.exceptions import RedisError
from starlette.routing import WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from waiting_room.core.states import CloseCode
from waiting_room.core.tickets import event_of
from waiting_room.web.rooms import Conn

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 2.0


async def accept(ws: WebSocket) -> bool:
    """Accept the handshake, then close with 4403 unless the page's origin may open sockets here."""
    await ws.accept()
    if ws.state.wr.settings.origin_allowed(ws.headers.get("origin")):
        return True
    await ws.close(CloseCode.ORIGIN_NOT_ALLOWED)
    return False


def text_of(message: Message) -> str:
    """A received frame as text (a binary frame decoded leniently, so the JSON check decides)."""
    text: str | None = message.get("text")
    return text if text is not None else (message.get("bytes") or b"").decode("utf-8", "replace")


async def ticket_socket(ws: WebSocket) -> None:
    wr = ws.state.wr
    if not await accept(ws):
        return
    ticket = ws.path_params["ticket"]
    event = event_of(ticket)
    if event is None:
        await ws.close(CloseCode.UNKNOWN_TICKET)
        return
    conn = Conn(ws, ticket, event)
    hub = wr.hub
    try:
        await hub.attach(conn)
    except (RedisError, OSError) as exc:
        log.warning("could not load %s: %s", ticket, exc)
        hub.detach(conn)
        await ws.close(CloseCode.INTERNAL_ERROR)
        return
    writer = asyncio.create_task(hub.pump(conn))
    reader = asyncio.create_task(_read(ws, conn))
    try:
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not writer.done() and conn.close_code is not None:
            await asyncio.wait({writer}, timeout=CLOSE_GRACE_SECONDS)  # let it say why
    finally:
        hub.detach(conn)
        for task in (writer, reader):
            task.cancel()
        await asyncio.gather(writer, reader, return_exceptions=True)


async def _read(ws: WebSocket, conn: Conn) -> None:
    """Until the client leaves or breaks a rule."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        try:
            json.loads(text_of(message))
        except ValueError:
            conn.close(CloseCode.BAD_MESSAGE)
            return


routes = [WebSocketRoute("/ws/tickets/{ticket}", ticket_socket)]
