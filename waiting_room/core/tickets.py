"""Ticket ids and ticket records: pure, no I/O.

A ticket id is ``{event}.{random}``: 144 random bits (unguessable) and the
event it belongs to, so any web process finds the event's keys from the id
alone, without a global lookup. Clients treat it as opaque.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from waiting_room.core import ids

# Orders in the line: a pre-queue ticket gets a random one below this, every later ticket this plus its
# join sequence (join.lua holds the same number), so the whole pre-queue sits ahead, shuffled.
SHUFFLE_RANGE = 1 << 40

EVENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_RANDOM = re.compile(r"^[A-Za-z0-9_-]{24}$")


def new_ticket(event: str) -> str:
    return f"{event}.{ids.token_urlsafe(18)}"


def event_of(ticket: str) -> str | None:
    """The event a well-formed ticket id belongs to, else None."""
    event, dot, rand = ticket.partition(".")
    if not dot or not EVENT_ID.fullmatch(event) or not _RANDOM.fullmatch(rand):
        return None
    return event


def is_event_id(value: str) -> bool:
    # fullmatch: `$` alone would accept a trailing newline
    return EVENT_ID.fullmatch(value) is not None


# The ticket record: one JSON object per ticket in the event's `tickets` hash, written only by the Lua
# scripts (join, promote, redeem, release) and read only through TicketRecord. Field -> meaning; a test
# checks that every field the scripts write is listed here and decoded below.
RECORD_FIELDS: dict[str, str] = {
    "s": "state the scripts last wrote: waiting, admitted, redeemed, expired or removed (join, promote, redeem)",
    "o": "join sequence number (join)",
    "u": "the wr_uid that joined, so trimming the record also frees the uid (join)",
    "j": "joined at, ms (join)",
    "jti": "the id its admission token carries; one per ticket, so it redeems once (join)",
    "p": "1 when it joined before opens_at (join)",
    "a": "admitted at, ms (promote)",
    "x": "token expires at, ms (promote)",
    "r": "redeemed at, ms (redeem)",
    "sx": "session expires at, ms; set to the release time by release (redeem, release)",
    "f": "finished (expired or removed) at, ms (promote)",
    "released": "1 when the holder released the session early (release)",
}


@dataclass(frozen=True)
class Admission:
    """What an admitted record says about its token (times in ms, as the scripts write them)."""

    jti: str
    admitted_ms: int
    expires_ms: int


@dataclass(frozen=True)
class TicketRecord:
    """What Redis keeps of one ticket (see RECORD_FIELDS; times in ms, as the scripts write them)."""

    stored: str  # the state the scripts last wrote
    order: int
    joined_ms: int
    uid: str | None = None
    jti: str | None = None
    pre_queue: bool = False
    admitted_ms: int | None = None
    token_expires_ms: int | None = None
    redeemed_ms: int | None = None
    session_expires_ms: int | None = None
    finished_ms: int | None = None
    released: bool = False

    @classmethod
    def decode(cls, raw: str | bytes) -> TicketRecord:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            stored=str(data["s"]),
            order=int(data.get("o", 0)),
            joined_ms=int(data.get("j", 0)),
            uid=data.get("u"),
            jti=data.get("jti"),
            pre_queue=bool(data.get("p")),
            admitted_ms=_int(data.get("a")),
            token_expires_ms=_int(data.get("x")),
            redeemed_ms=_int(data.get("r")),
            session_expires_ms=_int(data.get("sx")),
            finished_ms=_int(data.get("f")),
            released=bool(data.get("released")),
        )

    @property
    def admission(self) -> Admission | None:
        """The admission of a record that was ever admitted, else None."""
        if self.jti is None or self.admitted_ms is None or self.token_expires_ms is None:
            return None
        return Admission(self.jti, self.admitted_ms, self.token_expires_ms)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
