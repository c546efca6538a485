"""Ticket ids (format, randomness, the event they carry) and ticket records."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from waiting_room.core.tickets import TicketRecord, event_of, is_event_id, new_ticket

URLSAFE = string.ascii_letters + string.digits + "-_"
RANDOM_PART = "A" * 24


def random_event(rng: random.Random) -> str:
    first = rng.choice(string.ascii_lowercase + string.digits)
    return first + "".join(rng.choices(string.ascii_lowercase + string.digits + "-", k=rng.randrange(64)))


def test_new_ticket_format_and_randomness() -> None:
    tickets = [new_ticket("coupon-drop") for _ in range(500)]
    assert len(set(tickets)) == len(tickets)
    for ticket in tickets:
        event, dot, rand = ticket.partition(".")
        assert (event, dot) == ("coupon-drop", ".")
        assert len(rand) == 24 and set(rand) <= set(URLSAFE)
        assert len(base64.urlsafe_b64decode(rand)) * 8 >= 128
    # every character position varies: no fixed prefix, counter or timestamp in the random part
    for column in range(24):
        assert len({t.partition(".")[2][column] for t in tickets}) >= 40


def test_event_of_round_trips_any_event_id() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        event = random_event(rng)
        assert is_event_id(event)
        assert event_of(new_ticket(event)) == event


@pytest.mark.parametrize(
    "ticket",
    [
        "",
        ".",
        "demo",
        "demo" + RANDOM_PART,  # no dot
        "." + RANDOM_PART,  # no event
        "Demo." + RANDOM_PART,  # upper case
        "-demo." + RANDOM_PART,
        "a" * 65 + "." + RANDOM_PART,  # event id too long
        "de mo." + RANDOM_PART,
        "demo." + RANDOM_PART[:-1],  # 23 characters
        "demo." + RANDOM_PART + "A",  # 25 characters
        "demo." + RANDOM_PART[:-1] + "=",
        "demo." + RANDOM_PART[:-1] + "+",
        "demo." + RANDOM_PART[:-1] + "/",
        "demo." + RANDOM_PART[:-1] + ".",
        "demo.x." + RANDOM_PART,
        "démo." + RANDOM_PART,  # unicode in the event
        "demo." + RANDOM_PART[:-1] + "é",  # unicode in the random part
        "demo." + RANDOM_PART[:-1] + "\uff10",  # fullwidth digit zero
        "dem\u0661." + RANDOM_PART,  # Arabic-Indic digit one
        "demo." + RANDOM_PART + "\n",  # a trailing newline slips past `$`
        "demo\n." + RANDOM_PART,
        " demo." + RANDOM_PART,
        "demo." + RANDOM_PART + " ",
    ],
)
def test_event_of_rejects_malformed_ids(ticket: str) -> None:
    assert event_of(ticket) is None


def test_event_of_a_well_formed_id() -> None:
    assert event_of("demo." + RANDOM_PART) == "demo"
    assert event_of("a." + "-_09azAZ" * 3) == "a"
    assert event_of("a" * 64 + "." + RANDOM_PART) == "a" * 64


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("demo", True),
        ("0", True),
        ("a-", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("-a", False),
        ("A", False),
        ("a_b", False),
        ("a.b", False),
        ("demo\n", False),
        ("d\u00e9mo", False),
        ("\u0661", False),
    ],
)
def test_is_event_id(value: str, expected: bool) -> None:
    assert is_event_id(value) is expected


def test_decode_a_full_record() -> None:
    raw = json.dumps(
        {
            "s": "admitted",
            "o": 17,
            "j": 1_700_000_000_123,
            "p": 1,
            "a": 1_700_000_100_000,
            "x": 1_700_000_400_000,
            "jti": "abc",
            "sx": 1_700_000_700_000,
        }
    )
    for form in (raw, raw.encode()):
        assert TicketRecord.decode(form) == TicketRecord(
            stored="admitted",
            order=17,
            joined_ms=1_700_000_000_123,
            pre_queue=True,
            admitted_ms=1_700_000_100_000,
            token_expires_ms=1_700_000_400_000,
            jti="abc",
            session_expires_ms=1_700_000_700_000,
        )


def test_decode_a_minimal_record() -> None:
    record = TicketRecord.decode('{"s":"waiting"}')
    assert record == TicketRecord(stored="waiting", order=0, joined_ms=0)
    assert record.pre_queue is False and record.admitted_ms is None and record.jti is None


def test_decode_reads_lua_numbers_written_as_floats() -> None:
    record = TicketRecord.decode('{"s":"admitted","o":3.0,"j":1.7e12,"x":1.7000000004e12,"p":0}')
    assert (record.order, record.joined_ms, record.token_expires_ms) == (3, 1_700_000_000_000, 1_700_000_000_400)
    assert record.pre_queue is False
