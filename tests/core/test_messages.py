"""Message shapes: exactly the contract's fields, compact JSON, and the internal bus forms."""

from __future__ import annotations

import json

import pytest

from waiting_room.core import messages
from waiting_room.core.states import EventStatus

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
def test_bus_state_is_the_client_message_plus_the_event(status: EventStatus) -> None:
    assert messages.bus_state("demo", status) == {**messages.state(status), "event": "demo"}


@pytest.mark.parametrize("event", ["demo", None])
def test_bus_notice_names_its_event_or_none_for_all(event: str | None) -> None:
    body = messages.notice("n1", "info", "hello", 2.0)
    assert messages.bus_notice(event, body) == {**body, "event": event}
    assert "event" not in body


def test_bus_claim() -> None:
    ticket = "demo." + "A" * 24
    assert messages.bus_claim(ticket, "c-1") == {"type": "claim", "ticket": ticket, "conn": "c-1"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [([], []), ({}, []), ([1, "a"], [1, "a"]), (None, []), ("ab", []), (0, [])],
)
def test_as_list_reads_cjson_empty_tables(value: object, expected: list[object]) -> None:
    assert messages.as_list(value) == expected
