"""Message shapes: what the server pushes to sockets and what travels on the bus. Pure.

Client messages are the contract's; bus messages are internal (web <->
promoter <-> web). Both are JSON objects with a `type`.
"""

from __future__ import annotations

import json
from typing import Any

from waiting_room.core.states import EventStatus

STATE_MESSAGES = {
    EventStatus.OPEN: "The line is moving.",
    EventStatus.PAUSED: "The line is paused for now. You keep your place.",
    EventStatus.SOLD_OUT: "Sold out. Thank you for waiting.",
    EventStatus.CLOSED: "This event is closed. The line has ended.",
}

NOTICE_LEVELS = ("info", "warning", "critical")
MAX_NOTICE_TEXT = 500


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def position(position: int | None, waiting: int, eta_seconds: int | None, served_total: int) -> dict[str, Any]:
    return {
        "type": "position",
        "position": position,
        "waiting": waiting,
        "eta_seconds": eta_seconds,
        "served_total": served_total,
    }


def admitted(token: str, expires_at: float, redirect: str) -> dict[str, Any]:
    return {"type": "admitted", "token": token, "expires_at": expires_at, "redirect": redirect}


def state(status: EventStatus) -> dict[str, Any]:
    return {"type": "state", "state": str(status), "message": STATE_MESSAGES[status]}


def notice(notice_id: str, level: str, text: str, at: float) -> dict[str, Any]:
    return {"type": "notice", "id": notice_id, "level": level, "text": text, "at": at}


def latest_notice(*stored: dict[str, str]) -> dict[str, Any] | None:
    """The newest of the stored notices (an event's own, the one to all), as a client message."""
    found = [n for n in stored if n and {"id", "level", "text", "at"} <= n.keys()]
    if not found:
        return None
    latest = max(found, key=lambda n: float(n["at"]))
    return notice(latest["id"], latest["level"], latest["text"], float(latest["at"]))


# --- bus (internal) -------------------------------------------------------


def bus_state(event: str, status: EventStatus) -> dict[str, Any]:
    return {**state(status), "event": event}


def bus_notice(event: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """`event` None: for every event."""
    return {**body, "event": event}


def bus_claim(ticket: str, conn: str) -> dict[str, Any]:
    """A socket for `ticket` opened somewhere: any other socket of that ticket is replaced (4001)."""
    return {"type": "claim", "ticket": ticket, "conn": conn}


def as_list(value: Any) -> list[Any]:
    """Lua's cjson encodes an empty table as {}: read it as an empty list."""
    return value if isinstance(value, list) else []
