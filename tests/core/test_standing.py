"""The one decision of where a ticket stands, on Redis's clock: pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from waiting_room.core.event_settings import EventSettings
from waiting_room.core.standing import Standing, redis_ms, standing
from waiting_room.core.states import TicketState
from waiting_room.core.tickets import Admission, TicketRecord

SETTINGS = EventSettings.defaults("demo")


def state_at(record: TicketRecord, opens_at: float | None) -> TicketState:
    return standing(record, None, replace(SETTINGS, opens_at=opens_at), NOW_MS).state


NOW_MS = 1_700_000_000_000


@pytest.mark.parametrize(
    ("expires_ms", "expected"),
    [
        (None, TicketState.ADMITTED),
        (NOW_MS + 1, TicketState.ADMITTED),
        (NOW_MS, TicketState.ADMITTED),
        (NOW_MS - 1, TicketState.EXPIRED),
    ],
)
def test_an_admitted_ticket_expires_with_its_token(expires_ms: int | None, expected: TicketState) -> None:
    record = TicketRecord(stored="admitted", order=1, joined_ms=0, token_expires_ms=expires_ms)
    assert state_at(record, None) is expected


@pytest.mark.parametrize("stored", ["redeemed", "removed", "expired", "waiting"])
def test_only_an_admitted_ticket_expires_from_its_token(stored: str) -> None:
    record = TicketRecord(stored=stored, order=1, joined_ms=0, token_expires_ms=NOW_MS - 1)
    assert state_at(record, None) is TicketState(stored)


@pytest.mark.parametrize(
    ("pre_queue", "opens_at", "expected"),
    [
        (True, NOW_MS / 1000 + 60, TicketState.PRE_QUEUE),
        (True, NOW_MS / 1000 + 0.001, TicketState.PRE_QUEUE),
        (True, NOW_MS / 1000, TicketState.WAITING),  # opening now
        (True, NOW_MS / 1000 - 60, TicketState.WAITING),
        (True, None, TicketState.WAITING),
        (False, NOW_MS / 1000 + 60, TicketState.WAITING),  # joined after opens_at was moved later
    ],
)
def test_pre_queue_only_before_opening(pre_queue: bool, opens_at: float | None, expected: TicketState) -> None:
    record = TicketRecord(stored="waiting", order=1, joined_ms=0, pre_queue=pre_queue)
    assert state_at(record, opens_at) is expected


@pytest.mark.parametrize("stored", ["admitted", "redeemed", "removed", "expired"])
def test_a_pre_queue_record_past_waiting_keeps_its_state(stored: str) -> None:
    record = TicketRecord(stored=stored, order=1, joined_ms=0, pre_queue=True)
    assert state_at(record, NOW_MS / 1000 + 60) is TicketState(stored)


def test_only_a_waiting_ticket_has_a_position() -> None:
    waiting = TicketRecord(stored="waiting", order=1, joined_ms=0)
    assert standing(waiting, 4, SETTINGS, NOW_MS) == Standing(TicketState.WAITING, position=5)
    assert standing(waiting, None, SETTINGS, NOW_MS) == Standing(TicketState.WAITING)
    pre = replace(waiting, pre_queue=True)
    assert standing(pre, 4, replace(SETTINGS, opens_at=NOW_MS / 1000 + 1), NOW_MS) == Standing(TicketState.PRE_QUEUE)
    assert standing(replace(waiting, stored="removed"), 4, SETTINGS, NOW_MS) == Standing(TicketState.REMOVED)


def test_only_a_live_admission_carries_its_token_claims() -> None:
    admitted = TicketRecord(
        stored="admitted", order=1, joined_ms=0, jti="j", admitted_ms=NOW_MS - 10, token_expires_ms=NOW_MS + 10
    )
    assert standing(admitted, None, SETTINGS, NOW_MS) == Standing(
        TicketState.ADMITTED, admission=Admission("j", NOW_MS - 10, NOW_MS + 10)
    )
    assert standing(admitted, None, SETTINGS, NOW_MS + 11) == Standing(TicketState.EXPIRED)


def test_redis_time_in_milliseconds() -> None:
    assert redis_ms(["1700000000", "123456"]) == 1_700_000_000_123
