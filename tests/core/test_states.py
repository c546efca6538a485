"""States and close codes: the contract's values, and which codes a page reconnects after."""

from __future__ import annotations

import pytest

from waiting_room.core.states import CLOSE_CODE_EXPLANATIONS, CloseCode, EventStatus, TicketState

RECONNECT = {
    CloseCode.GOING_AWAY: True,
    CloseCode.INTERNAL_ERROR: True,
    CloseCode.MESSAGE_TOO_BIG: False,
    CloseCode.TOO_MANY_MESSAGES: False,
    CloseCode.REPLACED: False,
    CloseCode.UNAUTHORIZED: False,
    CloseCode.BAD_MESSAGE: False,
    CloseCode.ORIGIN_NOT_ALLOWED: False,
    CloseCode.UNKNOWN_TICKET: False,
    CloseCode.NOT_WAITING: False,
}


@pytest.mark.parametrize("code", list(CloseCode))
def test_reconnect(code: CloseCode) -> None:
    assert code.reconnect is RECONNECT[code]


@pytest.mark.parametrize("code", list(CloseCode))
def test_every_code_is_explained(code: CloseCode) -> None:
    assert code.explanation == CLOSE_CODE_EXPLANATIONS[code]
    assert code.explanation.strip()
    assert ("reconnect" in code.explanation) is code.reconnect


def test_codes_are_the_contracts() -> None:
    assert set(RECONNECT) == set(CloseCode) == set(CLOSE_CODE_EXPLANATIONS)
    ours = {
        "unknown ticket": CloseCode.UNKNOWN_TICKET,
        "not waiting": CloseCode.NOT_WAITING,
        "replaced": CloseCode.REPLACED,
        "origin": CloseCode.ORIGIN_NOT_ALLOWED,
        "too big": CloseCode.MESSAGE_TOO_BIG,
        "not json": CloseCode.BAD_MESSAGE,
        "flood": CloseCode.TOO_MANY_MESSAGES,
    }
    assert ours == {
        "unknown ticket": 4404,
        "not waiting": 4409,
        "replaced": 4001,
        "origin": 4403,
        "too big": 1009,
        "not json": 4400,
        "flood": 1008,
    }
    # the server's own codes are in the application range; the rest are RFC 6455 codes
    assert all(4000 <= c < 5000 or c in (1001, 1008, 1009, 1011) for c in CloseCode)


def test_ticket_states() -> None:
    assert [s.value for s in TicketState] == ["pre_queue", "waiting", "admitted", "redeemed", "expired", "removed"]
    assert {s for s in TicketState if s.finished} == {TicketState.REDEEMED, TicketState.EXPIRED, TicketState.REMOVED}


def test_event_statuses() -> None:
    assert [s.value for s in EventStatus] == ["open", "paused", "sold_out", "closed"]
    assert str(EventStatus.SOLD_OUT) == "sold_out"
