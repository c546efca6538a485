"""WebSocket /ws/tickets/{ticket}: the server pushes; the client need send nothing.

A socket's life is here: accept, attach to the hub, then two tasks — the
writer (`pump`), which drains what the hub leaves in the socket's Conn,
and the reader, which only enforces the rules — until either ends.

The handshake is accepted for any well-formed request, then refused with a
close code the page can act on (CloseCode says which ones to reconnect
after). Client messages are read only to enforce the rules: over 1 KiB is
closed by the server's frame limit (1009), anything not JSON gets 4400, and
more than 10 a second, sustained, gets 1008 (core.flood).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from starlette.routing import WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from waiting_room.core import messages
from waiting_room.core.flood import MessageBudget
from waiting_room.core.states import CloseCode
from waiting_room.core.tickets import event_of
from waiting_room.web.rooms import Conn, Room
from waiting_room.web.state import app_state

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 2.0


async def accept(ws: WebSocket) -> bool:
    """Accept the handshake, then close with 4403 unless the page's origin may open sockets here."""
    await ws.accept()
    if app_state(ws).settings.origin_allowed(ws.headers.get("origin")):
        return True
    await ws.close(CloseCode.ORIGIN_NOT_ALLOWED)
    return False


def text_of(message: Message) -> str:
    """A received frame as text (a binary frame decoded leniently, so the JSON check decides)."""
    text: str | None = message.get("text")
    return text if text is not None else (message.get("bytes") or b"").decode("utf-8", "replace")


async def ticket_socket(ws: WebSocket) -> None:
    wr = app_state(ws)
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
        room = await hub.attach(conn)
    except hub.loader.errors as exc:
        log.warning("could not load %s: %s", ticket, exc)
        hub.detach(conn)
        await ws.close(CloseCode.INTERNAL_ERROR)
        return
    writer = asyncio.create_task(pump(conn, room))
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


async def pump(conn: Conn, room: Room) -> None:
    """The socket's writer: mailbox first, then the latest position, then a close if asked."""
    while True:
        await conn.wake.wait()
        conn.wake.clear()
        while conn.mailbox:
            await conn.ws.send_text(conn.mailbox.popleft())
        if conn.close_code is not None:
            with contextlib.suppress(Exception):
                await conn.ws.close(conn.close_code)
            return
        if conn.position_due and not conn.admitted:
            conn.position_due = False
            message = room.position_message(conn)
            if message is not None:
                await conn.ws.send_text(messages.encode(message))


async def _read(ws: WebSocket, conn: Conn) -> None:
    """Until the client leaves or breaks a rule."""
    budget = MessageBudget()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if not budget.take(time.monotonic()):  # before any decoding: a flood costs as little as it can
            conn.close(CloseCode.TOO_MANY_MESSAGES)
            return
        try:
            json.loads(text_of(message))
        except ValueError:
            conn.close(CloseCode.BAD_MESSAGE)
            return


routes = [WebSocketRoute("/ws/tickets/{ticket}", ticket_socket)]
