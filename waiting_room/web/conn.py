"""One socket's state and the writes to it, done in the fan-out loop itself while the socket takes them.

Writes go out as frames straight to the socket's transport where the server
allows it (web/frames.py), else through the ASGI server's own `send` for the
socket (no framework layer per message). A `send` on a socket whose transport is writable
finishes without ever suspending (uvicorn awaits only its "writable" flag,
already set). So a write is started by hand (`send(...).__await__().send(None)`):
if it finishes there, the message is out, with no task, no wake-up and no
queue per socket. If it suspends, the transport is paused (the peer reads
slower than we write): that one send is carried on in a drain task, and
until the socket has drained, must-send messages (`admitted`, `notice`, `state`) wait in a
backlog, positions are only marked due (the drain task sends the latest one,
computed when it gets there), and a close waits its turn. A slow socket thus
delays nobody; it gets fewer, fresher positions. One that stays backed up for
STALL_SECONDS, or whose backlog reaches BACKLOG_LIMIT, is abandoned: its
endpoint stops and the server closes the connection.

Nothing here depends on the ASGI server: a server whose sends always suspend
just takes the drain path every time.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Send

from waiting_room.core import messages
from waiting_room.core.ranks import PositionTracker
from waiting_room.core.states import CloseCode
from waiting_room.web.frames import DirectText

if TYPE_CHECKING:
    from waiting_room.web.rooms import Room

BACKLOG_LIMIT = 64  # must-send messages waiting behind a paused transport before the socket is abandoned
STALL_SECONDS = 20.0  # ... or seconds it stays paused


Step = Generator[Any, None, Any]  # a send under way (its awaitable's iterator)


async def carry_on(step: Step, waiting: Any) -> None:
    """Finish a coroutine that was started by hand and suspended, as a task would: wait for what it
    waits on (`waiting`, what it yielded), resume it, until it returns."""
    while True:
        try:
            if waiting is None:  # a bare yield: it only gave others a turn
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting,))
        except asyncio.CancelledError as exc:
            try:
                step.throw(exc)
            finally:
                step.close()
            raise
        try:
            waiting = step.send(None)
        except StopIteration:
            return


class Conn:
    """One socket; mutated only from the event loop. Slotted: a process holds tens of thousands."""

    __slots__ = (
        "abandoned",
        "admitted",
        "announced",
        "backlog",
        "claimed",
        "close_code",
        "closed",
        "direct",
        "drain",
        "endpoint",
        "eta_told",
        "event",
        "id",
        "position_due",
        "rival",
        "room",
        "stalled_at",
        "ticket",
        "tracker",
        "transmit",
    )

    def __init__(self, transmit: Send, ticket: str, event: str) -> None:
        self.transmit = transmit  # the server's ASGI `send` for this socket
        self.direct = DirectText.of(transmit)  # its frames straight to the transport, where the server allows
        self.ticket = ticket
        self.event = event
        self.id = secrets.token_hex(6)
        self.tracker = PositionTracker()
        self.room: Room | None = None  # set when a room takes it
        self.endpoint: asyncio.Task[Any] | None = None  # stopped if the socket is abandoned
        self.backlog: deque[str] | None = None  # must-send messages behind a paused transport
        self.drain: asyncio.Task[None] | None = None  # while the transport is paused
        self.stalled_at = 0.0
        self.position_due = False  # a position to send once drained
        self.announced = False  # a rankless (pre-queue) position was pushed
        self.eta_told: int | None = None  # the ETA last pushed: pushed again when it moves materially
        self.admitted = False
        self.close_code: int | None = None  # a close was asked for
        self.closed = False  # nothing more goes out: the close frame went, or the peer is gone
        self.abandoned = False
        self.claimed: tuple[int, str] | None = None  # this socket's claim order, once its arrival was read
        self.rival: tuple[int, str] | None = None  # the newest other claim heard before that

    # --- what the hub asks ---------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """A must-send message: out now, or after what waits before it."""
        if self.closed or self.close_code is not None:
            return
        text = messages.encode(message)
        if self.drain is None:
            self.write(text)
            return
        if self.backlog is None:
            self.backlog = deque()
        if len(self.backlog) >= BACKLOG_LIMIT:
            self.abandon()
            return
        self.backlog.append(text)

    def position_changed(self) -> None:
        """Push the current position now, or mark it due if the socket is backed up."""
        if self.closed or self.close_code is not None or self.admitted:
            return
        if self.drain is not None:
            self.position_due = True
            if asyncio.get_running_loop().time() - self.stalled_at > STALL_SECONDS:
                self.abandon()
            return
        text = self.room.position_text(self) if self.room is not None else None
        if text is not None:
            self.write(text)

    def close(self, code: int) -> None:
        """Say why and close: now, or once what waits before it is out."""
        if self.close_code is not None or self.closed:
            return
        self.close_code = code
        if self.drain is None:
            self._close_now()

    def abandon(self) -> None:
        """Give up on a socket that does not drain: stop its drain and its endpoint (the server then
        drops the connection). Nothing more is written to it."""
        if self.close_code is None:
            self.close_code = CloseCode.GOING_AWAY
        self.closed = self.abandoned = True
        self.backlog = None
        for task in (self.drain, self.endpoint):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self.drain = None  # (a drain cancelled before it ever ran cannot say so itself)

    # --- writing ---------------------------------------------------------------

    def write(self, text: str) -> None:
        """Write it now (as a frame, or by starting the ASGI send); if the transport is paused, a drain
        task finishes the send. (Callers check `drain` first: whatever is queued goes out before.)"""
        if self.direct is not None and self.direct.write(text):
            return
        self._run({"type": "websocket.send", "text": text})

    def _close_now(self) -> None:
        self.closed = True
        self._run(self._close_message())

    def _close_message(self) -> Message:
        return {"type": "websocket.close", "code": self.close_code or CloseCode.GOING_AWAY, "reason": ""}

    def _run(self, message: Message) -> None:
        """Run a send until it finishes or suspends; a suspended one is finished by a drain task."""
        step = self.transmit(message).__await__()
        try:
            waiting = step.send(None)
        except StopIteration:
            return
        except Exception:  # the peer is gone; its endpoint hears the disconnect
            self.closed = True
            return
        self.stalled_at = asyncio.get_running_loop().time()
        self.drain = asyncio.create_task(self._drain(step, waiting))

    async def _drain(self, step: Step, waiting: Any) -> None:
        """Finish the write that found the transport paused, then what queued behind it, in order:
        must-send messages, a close, the latest position."""
        try:
            await carry_on(step, waiting)
            while not self.closed:
                if self.backlog:
                    await self.transmit({"type": "websocket.send", "text": self.backlog.popleft()})
                elif self.close_code is not None:
                    self.closed = True
                    await self.transmit(self._close_message())
                elif self.position_due and not self.admitted:
                    self.position_due = False
                    text = self.room.position_text(self) if self.room is not None else None
                    if text is not None:
                        await self.transmit({"type": "websocket.send", "text": text})
                else:
                    break
        except Exception:  # the peer is gone
            self.closed = True
        finally:
            self.drain = None

    async def flushed(self) -> None:
        """Until what is queued for the socket is out (or it is given up on)."""
        if self.drain is not None:
            await asyncio.wait((self.drain,))

    def discard(self) -> None:
        """The endpoint is done: stop any drain still running."""
        self.closed = True
        if self.drain is not None:
            self.drain.cancel()
