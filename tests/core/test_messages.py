"""Message shapes: exactly the contract's fields, compact JSON, and the internal bus forms."""

from __future__ import annotations

import json

import pytest

from waiting_room.core import messages
from waiting_room.core.states import EventStatus
from waiting_room.core.tickets import Admission

# CONTRACT.md, "WebSocket": type -> fields
CONTRACT_FIELDS = {
    "position": {"position", "waiting", "eta_seconds", "served_total"},
    "admitted": {"token", "expires_at", "redirect"},
    "notice": {"id", "level", "text", "at"},
    "state": {"state", "message"},
}
CONTRACT_STATES = {"open", "paused", "sold_out", "closed"}


def fields_of(message: dict[str, object]) -> set[str]:
    return set(message) - {"type"}


def test_position() -> None:
    message = messages.position(3, 10, 42, 1234)
    assert message["type"] == "position" and fields_of(message) == CONTRACT_FIELDS["position"]
    values = (message["position"], message["waiting"], message["eta_seconds"], message["served_total"])
    assert values == (3, 10, 42, 1234)


def test_position_unknowns_are_null() -> None:
    message = json.loads(messages.encode(messages.position(None, 0, None, 0)))
    assert message["position"] is None and message["eta_seconds"] is None


@pytest.mark.parametrize(("waiting", "served"), [(10, 0), (19_500, 1234), (0, 9)])
def test_position_text_is_the_encoded_position_byte_for_byte(waiting: int, served: int) -> None:
    texts = messages.PositionText(waiting, served)
    assert texts.fits(waiting, served) and not texts.fits(waiting, served + 1)
    for position, eta in [(1, None), (2, 0), (11, 60), (60, 61), (1000, 5), (123_457, 987_654)]:
        assert texts.text(position, eta) == messages.encode(messages.position(position, waiting, eta, served))


def test_admitted() -> None:
    message = messages.admitted("tok", 1_700_000_300.5, "/order/demo")
    assert message["type"] == "admitted" and fields_of(message) == CONTRACT_FIELDS["admitted"]
    assert (message["token"], message["expires_at"], message["redirect"]) == ("tok", 1_700_000_300.5, "/order/demo")


def test_notice() -> None:
    message = messages.notice("n1", "warning", "Doors at 9", 1_700_000_000.0)
    assert message["type"] == "notice" and fields_of(message) == CONTRACT_FIELDS["notice"]
    assert (message["id"], message["level"], message["text"], message["at"]) == (
        "n1",
        "warning",
        "Doors at 9",
        1_700_000_000.0,
    )
    assert messages.NOTICE_LEVELS == ("info", "warning", "critical")


@pytest.mark.parametrize("status", list(EventStatus))
def test_state(status: EventStatus) -> None:
    message = messages.state(status)
    assert message["type"] == "state" and fields_of(message) == CONTRACT_FIELDS["state"]
    assert message["state"] == status.value and message["state"] in CONTRACT_STATES
    assert isinstance(message["message"], str) and message["message"].strip()
    assert type(json.loads(messages.encode(message))["state"]) is str


def test_every_status_has_its_own_message() -> None:
    assert set(messages.STATE_MESSAGES) == set(EventStatus)
    assert len(set(messages.STATE_MESSAGES.values())) == len(EventStatus)


def test_encode_is_compact_json_that_keeps_text_readable() -> None:
    message = messages.notice("n1", "info", '대기열 "안내" ✓', 1.5)
    text = messages.encode(message)
    assert json.loads(text) == message
    assert "대기열" in text and ": " not in text and ", " not in text


@pytest.mark.parametrize("status", list(EventStatus))
def test_a_state_change_is_the_client_message_plus_the_event(status: EventStatus) -> None:
    change = messages.StateChange("demo", status)
    assert json.loads(change.encode()) == {**messages.state(status), "event": "demo"}
    assert messages.parse(change.encode()) == change


@pytest.mark.parametrize("event", ["demo", None])
def test_a_notice_names_its_event_or_none_for_all(event: str | None) -> None:
    notice = messages.Notice(event, "n1", "info", "hello", 2.0)
    assert json.loads(notice.encode()) == {**messages.notice("n1", "info", "hello", 2.0), "event": event}
    assert "event" not in notice.client_message()
    assert messages.parse(notice.encode()) == notice


def test_a_claim_names_the_ticket_its_event_and_its_order() -> None:
    ticket = "demo." + "A" * 24
    claim = messages.Claim(ticket, "c-1", 1_800_000_000_123)
    assert json.loads(claim.encode()) == {"type": "claim", "ticket": ticket, "conn": "c-1", "at": 1_800_000_000_123}
    assert messages.parse(claim.encode()) == claim and claim.event == "demo"
    assert claim.order < messages.Claim(ticket, "c-0", 1_800_000_000_124).order  # time first
    assert claim.order < messages.Claim(ticket, "c-2", 1_800_000_000_123).order  # then the socket id
    unordered = json.dumps({"type": "claim", "ticket": ticket, "conn": "c-1"})  # from a process before orders
    assert messages.parse(unordered) == messages.Claim(ticket, "c-1", 0)


def test_an_advance_round_trips_and_reads_cjson_empty_tables() -> None:
    advance = messages.Advance(
        event="demo",
        served=5,
        waiting=3,
        status=EventStatus.OPEN,
        observed_rate=12.5,
        admitted=(messages.AdmittedTicket("demo.a", Admission("j", 1000, 301_000)),),
        removed=("demo.b",),
        expired=("demo.c",),
        at_ms=1000,
    )
    assert messages.parse(advance.encode()) == advance
    assert advance.finished == ("demo.b", "demo.c")
    # what promote.lua sends when nothing was admitted: cjson writes an empty table as {}
    lua = {**json.loads(advance.encode()), "admitted": {}, "removed": {}, "expired": {}}
    parsed = messages.parse(json.dumps(lua))
    assert isinstance(parsed, messages.Advance) and parsed.admitted == parsed.finished == ()


def test_an_unknown_type_is_none_and_a_malformed_message_raises() -> None:
    assert messages.parse(json.dumps({"type": "from-the-future"})) is None
    for junk in ["not json", "[1, 2]", "{}", '{"type": "advance", "event": "x"}', '{"type": "claim"}']:
        with pytest.raises(messages.MalformedMessage):
            messages.parse(junk)
    with pytest.raises(messages.MalformedMessage):
        messages.parse(json.dumps({"type": "state", "event": "x", "state": "weird"}))
