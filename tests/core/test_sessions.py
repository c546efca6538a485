"""Session cookie values: the event and a secret, nothing of the ticket."""

from __future__ import annotations

import pytest

from waiting_room.core.sessions import new_session, parse_session
from waiting_room.core.tickets import event_of, new_ticket


def test_a_new_session_names_its_event_and_a_fresh_secret() -> None:
    made = {new_session("spring-sale") for _ in range(1000)}
    assert len(made) == 1000
    for value in made:
        parsed = parse_session(value)
        assert parsed is not None and parsed[0] == "spring-sale" and len(parsed[1]) == 43
        assert event_of(value) is None  # never mistaken for a ticket id


@pytest.mark.parametrize(
    "value",
    ["", "spring-sale", "spring-sale.", "Spring.{s}", "spring-sale.{s}x", "spring-sale.{s}\n", "{s}", ".{s}"],
)
def test_anything_else_is_no_session(value: str) -> None:
    assert parse_session(value.format(s="A" * 43)) is None


def test_a_ticket_id_is_no_session() -> None:
    assert parse_session(new_ticket("spring-sale")) is None
