"""Message shapes: what the server pushes to sockets and what travels on the bus. Pure.

Client messages are the contract's; bus messages are internal (web <->
promoter <-> web). Both are JSON objects with a `type`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from waiting_room.core.ranks import LineChange, order
from waiting_room.core.states import EventStatus
from waiting_room.core.tickets import Admission, event_of

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


class PositionText:
    """Encodes the `position` messages of one room and tick: what they share (waiting, served_total)
    once, and per socket only its numbers, byte for byte what `encode(position(...))` gives. A fan-out
    to thousands of sockets encodes no JSON per socket."""

    __slots__ = ("_basis", "_tail", "_waiting")

    def __init__(self, waiting: int, served_total: int) -> None:
        self._basis = (waiting, served_total)
        self._waiting = f',"waiting":{waiting},"eta_seconds":'
        self._tail = f',"served_total":{served_total}}}'

    def fits(self, waiting: int, served_total: int) -> bool:
        return self._basis == (waiting, served_total)

    def text(self, position: int, eta_seconds: int | None) -> str:
        eta = "null" if eta_seconds is None else eta_seconds
        return f'{{"type":"position","position":{position}{self._waiting}{eta}{self._tail}'


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
#
# What travels between processes on the bus, typed; `parse` is the one place a bus message is read,
# `encode` (a method of each) the one place one is written, except `advance`, which promote.lua
# publishes in the same atomic step as the admissions it reports (tests check the two agree).


class MalformedMessage(ValueError):
    """A bus message that does not have the shape of its type (another version, another publisher)."""


@dataclass(frozen=True)
class AdmittedTicket:
    ticket: str
    admission: Admission


@dataclass(frozen=True)
class Advance:
    """One promoter tick of one event (promote.lua): who was admitted, who left, the new totals."""

    event: str
    served: int
    waiting: int
    status: EventStatus
    observed_rate: float
    admitted: tuple[AdmittedTicket, ...]
    removed: tuple[str, ...]
    expired: tuple[str, ...]
    at_ms: int  # Redis time of the tick
    seq: int = 0  # the event's sequence number of advances (0: a publisher that does not number them)
    popped: int = 0  # tickets that left from the head of the line (admitted, or removed from a closed line)
    gone: tuple[int, ...] = ()  # order scores of tickets removed from anywhere else (abandoned)

    @property
    def change(self) -> LineChange | None:
        """What this tick took out of the line, for the rank arithmetic (core/ranks.py)."""
        return LineChange.of(self.seq, self.popped, self.gone) if self.seq else None

    @property
    def finished(self) -> tuple[str, ...]:
        """Tickets whose sockets are done (removed from the line, or their token expired)."""
        return self.removed + self.expired

    def encode(self) -> str:
        return encode(
            {
                "type": "advance",
                "event": self.event,
                "served": self.served,
                "waiting": self.waiting,
                "status": str(self.status),
                "observed_rate": self.observed_rate,
                "admitted": [
                    [a.ticket, a.admission.admitted_ms, a.admission.expires_ms, a.admission.jti] for a in self.admitted
                ],
                "removed": list(self.removed),
                "expired": list(self.expired),
                "at": self.at_ms,
                "seq": self.seq,
                "popped": self.popped,
                "gone": [str(g) for g in self.gone],
            }
        )


@dataclass(frozen=True)
class StateChange:
    """An operator changed an event's status; on the wire, the client's `state` message plus the event."""

    event: str
    status: EventStatus

    def client_message(self) -> dict[str, Any]:
        return state(self.status)

    def encode(self) -> str:
        return encode({**self.client_message(), "event": self.event})


@dataclass(frozen=True)
class Notice:
    """An operator's notice; `event` None: for every event. On the wire, the client's message plus the event."""

    event: str | None
    id: str
    level: str
    text: str
    at: float

    def client_message(self) -> dict[str, Any]:
        return notice(self.id, self.level, self.text, self.at)

    def encode(self) -> str:
        return encode({**self.client_message(), "event": self.event})


@dataclass(frozen=True)
class Claim:
    """A socket for `ticket` opened somewhere: any older socket of that ticket is replaced (4001).

    Older by `order`: the Redis time of the transaction that loaded the socket (a process's claims
    never go back in time, nor repeat a millisecond: a later socket there is the newer), then the
    socket id.
    Every process compares the same pairs, so of sockets opened at the same instant, in one process
    or many, exactly one — the last — survives, whatever order the claims arrive in."""

    ticket: str
    conn: str
    at_ms: int = 0

    @property
    def event(self) -> str | None:
        return event_of(self.ticket)

    @property
    def order(self) -> tuple[int, str]:
        return (self.at_ms, self.conn)

    def encode(self) -> str:
        return encode({"type": "claim", "ticket": self.ticket, "conn": self.conn, "at": self.at_ms})


BusMessage = Advance | StateChange | Notice | Claim


def parse(data: str | bytes) -> BusMessage | None:
    """A bus message, typed; None for a type this version does not know. Raises MalformedMessage."""
    try:
        message = json.loads(data)
        kind = message["type"]
        if kind == "advance":
            return Advance(
                event=str(message["event"]),
                served=int(message["served"]),
                waiting=int(message["waiting"]),
                status=EventStatus(message["status"]),
                observed_rate=float(message.get("observed_rate") or 0),
                admitted=tuple(
                    AdmittedTicket(str(ticket), Admission(str(jti), int(admitted_ms), int(expires_ms)))
                    for ticket, admitted_ms, expires_ms, jti in _list(message.get("admitted"))
                ),
                removed=tuple(str(t) for t in _list(message.get("removed"))),
                expired=tuple(str(t) for t in _list(message.get("expired"))),
                at_ms=int(message["at"]),
                seq=int(message.get("seq") or 0),
                popped=int(message.get("popped") or 0),
                gone=tuple(order(g) for g in _list(message.get("gone"))),
            )
        if kind == "state":
            return StateChange(str(message["event"]), EventStatus(message["state"]))
        if kind == "notice":
            event = message.get("event")
            return Notice(
                None if event is None else str(event),
                str(message["id"]),
                str(message["level"]),
                str(message["text"]),
                float(message["at"]),
            )
        if kind == "claim":
            return Claim(str(message["ticket"]), str(message["conn"]), int(message.get("at", 0)))
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessage(f"malformed bus message: {exc}") from None


def _list(value: Any) -> list[Any]:
    """Lua's cjson encodes an empty table as {}: read it as an empty list."""
    return value if isinstance(value, list) else []
