"""WebSocket /ws/tickets/{ticket}: the server pushes; the client need send nothing.

A socket's life is here, in one task: accept, attach to the hub, then read
until the client leaves, breaks a rule or the hub closes the socket. The
hub's fan-out writes to the socket itself (web/conn.py), so nothing here
waits to write except a last message saying why it closes.

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
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from waiting_room.core.flood import MessageBudget
from waiting_room.core.states import CloseCode
from waiting_room.core.tickets import event_of
from waiting_room.web.conn import Conn
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


async def ticket_socket(ws: WebSocket, transmit: Send) -> None:
    wr = app_state(ws)
    if not await accept(ws):
        return
    ticket = ws.path_params["ticket"]
    event = event_of(ticket)
    if event is None:
        await ws.close(CloseCode.UNKNOWN_TICKET)
        return
    conn = Conn(transmit, ticket, event)
    conn.endpoint = asyncio.current_task()
    hub = wr.hub
    try:
        try:
            await hub.attach(conn)
        except hub.loader.errors as exc:
            log.warning("could not load %s: %s", ticket, exc)
            conn.close(CloseCode.INTERNAL_ERROR)
        else:
            await _read(ws, conn)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                await conn.flushed()  # let it say why
    except asyncio.CancelledError:
        if not conn.abandoned:
            raise
        # the hub gave up on a socket that does not drain: returning lets the server drop it
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
    finally:
        hub.detach(conn)
        conn.discard()


async def _read(ws: WebSocket, conn: Conn) -> None:
    """Until the client leaves, breaks a rule, or the hub closes the socket (the server then reports
    the disconnect)."""
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


class TicketSocket:
    """The endpoint as a plain ASGI app: it gets the server's own `send` (nothing of Starlette's wraps it
    for an app endpoint, nor does the front for a socket), and the hub writes with that, so a pushed
    message costs no framework layer; accepting, reading and refusing go through Starlette's WebSocket."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await ticket_socket(WebSocket(scope, receive, send), send)


routes = [WebSocketRoute("/ws/tickets/{ticket}", TicketSocket())]
