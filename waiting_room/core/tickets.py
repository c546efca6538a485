"""Ticket ids and ticket records: pure, no I/O.

A ticket id is ``{event}.{random}``: 144 random bits (unguessable) and the
event it belongs to, so any web process finds the event's keys from the id
alone, without a global lookup. Clients treat it as opaque.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from waiting_room.core.states import TicketState

# Orders in the line: a pre-queue ticket gets a random one below this, every later ticket this plus its
# join sequence (join.lua holds the same number), so the whole pre-queue sits ahead, shuffled.
SHUFFLE_RANGE = 1 << 40

EVENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_RANDOM = re.compile(r"^[A-Za-z0-9_-]{24}$")


def new_ticket(event: str) -> str:
    return f"{event}.{secrets.token_urlsafe(18)}"


def event_of(ticket: str) -> str | None:
    """The event a well-formed ticket id belongs to, else None."""
    event, dot, rand = ticket.partition(".")
    if not dot or not EVENT_ID.fullmatch(event) or not _RANDOM.fullmatch(rand):
        return None
    return event


def is_event_id(value: str) -> bool:
    # fullmatch: `$` alone would accept a trailing newline
    return EVENT_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class TicketRecord:
    """What Redis keeps of one ticket (times in ms, as the scripts write them)."""

    stored: str  # the state the scripts last wrote
    order: int
    joined_ms: int
    pre_queue: bool = False
    admitted_ms: int | None = None
    token_expires_ms: int | None = None
    jti: str | None = None
    session_expires_ms: int | None = None

    @classmethod
    def decode(cls, raw: str | bytes) -> TicketRecord:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            stored=str(data["s"]),
            order=int(data.get("o", 0)),
            joined_ms=int(data.get("j", 0)),
            pre_queue=bool(data.get("p")),
            admitted_ms=_int(data.get("a")),
            token_expires_ms=_int(data.get("x")),
            jti=data.get("jti"),
            session_expires_ms=_int(data.get("sx")),
        )

    @property
    def admission(self) -> tuple[str, int, int]:
        """(jti, admitted, token expiry in ms) of an admitted record."""
        assert self.jti and self.admitted_ms is not None and self.token_expires_ms is not None
        return self.jti, self.admitted_ms, self.token_expires_ms

    def state(self, now_ms: int, opens_at: float | None) -> TicketState:
        """The state as seen now: a token past its expiry is expired before the promoter says so."""
        state = TicketState(self.stored)
        if state is TicketState.ADMITTED and self.token_expires_ms is not None and now_ms > self.token_expires_ms:
            return TicketState.EXPIRED
        if state is TicketState.WAITING and self.pre_queue and opens_at is not None and now_ms < opens_at * 1000:
            return TicketState.PRE_QUEUE
        return state


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
