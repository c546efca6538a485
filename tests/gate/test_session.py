"""The gate's session cookie: signed with the operator's secret, bound to its event, expiring."""

from __future__ import annotations

import pytest

from waiting_room.gate.session import GateSession, SessionCodec, delete_cookie, parse_cookies, set_cookie

SECRET = "a shop's gate secret, long enough"
SESSION = GateSession("spring-sale", 2_000_000_000.0, "header.payload.signature")


def test_a_session_round_trips_while_it_lasts() -> None:
    codec = SessionCodec(SECRET)
    value = codec.encode(SESSION)
    assert codec.decode(value, now=1_999_999_999.0) == SESSION
    assert codec.decode(value, now=2_000_000_000.0) is None  # expired
    assert codec.decode(value) == SESSION  # release reads it regardless of expiry


def test_another_secret_or_a_changed_byte_is_refused() -> None:
    value = SessionCodec(SECRET).encode(SESSION)
    assert SessionCodec(SECRET + "!").decode(value) is None
    payload, mac = value.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    assert SessionCodec(SECRET).decode(f"{flipped}.{mac}") is None
    for garbage in ("", ".", "x.y.z", "no-dot", "é.é", f"{payload}.", "a" * 9000):
        assert SessionCodec(SECRET).decode(garbage) is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        SessionCodec("short")


def test_the_cookie_is_http_only_and_secure_only_over_https() -> None:
    plain = set_cookie("wr_gate_e", "v", 59.2, secure=False).decode()
    assert plain == "wr_gate_e=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
    assert set_cookie("wr_gate_e", "v", 60, secure=True).decode().endswith("; Secure")
    assert "Max-Age=0" in delete_cookie("wr_gate_e", secure=False).decode()


def test_cookie_parsing_survives_other_cookies() -> None:
    cookies = parse_cookies('theme=dark; broken; wr_gate_e=abc.def ; quoted="x"; wr_gate_e=second')
    assert cookies == {"theme": "dark", "wr_gate_e": "abc.def", "quoted": "x"}
