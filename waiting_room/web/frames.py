"""A socket's text messages written as frames straight to its transport.

A pushed position is a few dozen bytes. Through the ASGI `send` of
uvicorn's websockets-sansio protocol, each one passed a coroutine, the
server's checks of the handshake and close state, websockets' frame
object, its serialisation through a BytesIO and a join: more CPU than the
position itself and about half of what the fan-out spent per socket. A frame
from server to client is never masked, and ours are never compressed
(`ws_per_message_deflate=False`) or fragmented: two header bytes (four above
125 bytes) and the UTF-8 text.

Only while the socket is open and its transport takes writes at once does a
message go this way; otherwise `write` says no and the caller takes the
ASGI `send` (web/conn.py), which waits for a paused transport or raises for
a closed one as it always did. Any other server, or another protocol of
uvicorn's, gets no `DirectText` and every message goes through `send`.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

TEXT = 0x81  # FIN and the text opcode
USED = ("close_sent", "disconnected", "writable", "conn", "transport")  # what `write` reads of the protocol


def text_frame(text: str) -> bytes:
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((TEXT, size)) + payload
    if size < 1 << 16:
        return bytes((TEXT, 126)) + size.to_bytes(2, "big") + payload
    return bytes((TEXT, 127)) + size.to_bytes(8, "big") + payload


class DirectText:
    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def of(cls, send: Any) -> DirectText | None:
        """For the ASGI `send` of a socket served by uvicorn's websockets-sansio protocol without
        extensions (no compression); None for anything else."""
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol) or not all(hasattr(protocol, a) for a in USED):
            return None
        if protocol.conn.extensions:
            return None
        return cls(protocol)

    def write(self, text: str) -> bool:
        """Written now (True), or not at all (False: the socket is not open, or its transport is paused)."""
        protocol = self._protocol
        if (
            protocol.close_sent
            or protocol.disconnected
            or not protocol.writable.is_set()
            or protocol.conn.state is not State.OPEN
            or protocol.transport.is_closing()
        ):
            return False
        protocol.transport.write(text_frame(text))
        return True
