"""Where a ticket stands: one pure decision from its record, rank, settings and Redis's clock.

The status call and the sockets both read a ticket through `standing`, with
the time Redis answered in the same transaction as the record, so a web host
whose clock is off tells a socket exactly what the status call says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from waiting_room.core.event_settings import EventSettings
from waiting_room.core.states import TicketState
from waiting_room.core.tickets import Admission, TicketRecord


@dataclass(frozen=True)
class Standing:
    state: TicketState
    position: int | None = None  # 1-based, only while waiting in an open line
    admission: Admission | None = None  # only while admitted (its token can still be redeemed)


def standing(record: TicketRecord, rank: int | None, settings: EventSettings, now_ms: int) -> Standing:
    """The ticket's state at `now_ms` (Redis time): an admission past its token's expiry is expired before
    the promoter says so, and a pre-queue ticket is pre_queue until the line opens."""
    state = TicketState(record.stored)
    if state is TicketState.ADMITTED and record.token_expires_ms is not None and now_ms > record.token_expires_ms:
        state = TicketState.EXPIRED
    opens_at = settings.opens_at
    if state is TicketState.WAITING and record.pre_queue and opens_at is not None and now_ms < opens_at * 1000:
        state = TicketState.PRE_QUEUE
    if state is TicketState.ADMITTED:
        return Standing(state, admission=record.admission)
    if state is TicketState.WAITING and rank is not None:
        return Standing(state, position=rank + 1)
    return Standing(state)


def redis_ms(time_reply: Any) -> int:
    """Redis TIME's (seconds, microseconds) as milliseconds, as the scripts compute `now`."""
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(frozen=True)
class EventSnapshot:
    """What one transaction read of an event and some of its tickets (the hub's view of Redis)."""

    settings: EventSettings | None  # None: the event is gone
    served: int
    waiting: int
    observed_rate: float
    now_ms: int  # Redis time of the read
    tickets: dict[str, Standing | None] = field(default_factory=dict)  # None: no such ticket
    notice: dict[str, Any] | None = None  # the latest live notice as a client message, when asked for
    seq: int = 0  # the event's sequence number of advances at the read (core/ranks.py)
    scores: dict[str, int] = field(default_factory=dict)  # order scores of the tickets still in the line
    fresh_beat: bool = False  # holding the arrivals wrote this process's heartbeat entry anew


@dataclass(frozen=True)
class Heartbeat:
    """One event's answer to a web process's heartbeat."""

    fresh: bool  # the entry was new: the first, or the process was taken for dead and must hold again
    settings: EventSettings | None  # None: the event is gone
    seq: int  # the event's sequence number of advances now
