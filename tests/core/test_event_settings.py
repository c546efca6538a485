"""Per-event settings: defaults, validation of every field, and the Redis hash round trip."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from waiting_room.core.event_settings import FIELDS, MAX_TITLE, EventSettings, InvalidSettings, validate
from waiting_room.core.states import EventStatus

BASE = EventSettings.defaults("demo")

INTEGER_BOUNDS = {
    "rate_per_minute": (1, 1_000_000),
    "max_active": (0, 10_000_000),
    "token_ttl_seconds": (1, 86_400),
    "session_ttl_seconds": (1, 7 * 86_400),
    "abandon_after_seconds": (1, 86_400),
    "client_joins_per_minute": (0, 1_000_000),
    "client_max_waiting": (0, 1_000),
    "pow_difficulty": (0, 24),
}


def rejects(changes: dict[str, Any], field: str) -> InvalidSettings:
    with pytest.raises(InvalidSettings) as caught:
        validate(BASE, changes)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    return caught.value


def test_defaults_follow_the_contract() -> None:
    expected = EventSettings(
        title="demo",
        rate_per_minute=600,
        max_active=0,
        token_ttl_seconds=300,
        session_ttl_seconds=600,
        abandon_after_seconds=120,
        opens_at=None,
        status=EventStatus.OPEN,
        target_url="/order/demo",
        client_joins_per_minute=0,
        client_max_waiting=0,
        pow_difficulty=0,
    )
    assert expected == BASE
    assert set(BASE.to_json()) == FIELDS


def test_no_changes_change_nothing() -> None:
    assert validate(BASE, {}) == BASE


def test_validate_applies_changes_to_a_copy() -> None:
    changed = validate(BASE, {"rate_per_minute": 30, "title": "Coupons"})
    assert (changed.rate_per_minute, changed.title) == (30, "Coupons")
    assert (BASE.rate_per_minute, BASE.title) == (600, "demo")
    assert changed.max_active == BASE.max_active


@pytest.mark.parametrize(("field", "bounds"), INTEGER_BOUNDS.items())
def test_integer_fields_accept_their_bounds(field: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    for value in (low, high, float(low), str(high)):  # a float without fraction; a string from Redis
        result = getattr(validate(BASE, {field: value}), field)
        assert result == int(value) and type(result) is int


@pytest.mark.parametrize(("field", "bounds"), INTEGER_BOUNDS.items())
def test_integer_fields_reject_out_of_bounds(field: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    for value in (low - 1, high + 1, -(10**30), 10**30, float(high + 1), str(low - 1)):
        assert f"between {low} and {high}" in rejects({field: value}, field).message


@pytest.mark.parametrize("field", INTEGER_BOUNDS)
@pytest.mark.parametrize(
    "value",
    [True, False, None, "", "ten", "60.0", "6e1", 60.5, math.nan, math.inf, -math.inf, [60], {"v": 60}],
)
def test_integer_fields_reject_other_types(field: str, value: Any) -> None:
    rejects({field: value}, field)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (0, 0.0),
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000.25, 1_700_000_000.25),
        ("1700000000.5", 1_700_000_000.5),
        (32_503_679_999, 32_503_679_999.0),
    ],
)
def test_opens_at_accepts_unix_seconds_or_null(value: Any, expected: float | None) -> None:
    result = validate(BASE, {"opens_at": value}).opens_at
    assert result == expected
    assert result is None or type(result) is float


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        math.nan,
        math.inf,
        -math.inf,
        "nan",
        "inf",
        "-inf",
        "NaN",
        -1,
        -0.5,
        32_503_680_000,
        1e300,
        10**400,  # fits no float: compared as an integer, never converted
        -(10**400),
        "1" * 400,
        "tomorrow",
        "2030-01-01T00:00:00Z",
        [1],
        {},
    ],
)
def test_opens_at_rejects_the_rest(value: Any) -> None:
    rejects({"opens_at": value}, "opens_at")


@pytest.mark.parametrize("status", list(EventStatus))
def test_status_accepts_each_status(status: EventStatus) -> None:
    assert validate(BASE, {"status": status.value}).status is status
    assert validate(BASE, {"status": status}).status is status


@pytest.mark.parametrize("value", ["OPEN", "Open", "pause", "", None, 1, True, ["open"]])
def test_status_rejects_the_rest(value: Any) -> None:
    error = rejects({"status": value}, "status")
    for status in EventStatus:
        assert status.value in error.message


@pytest.mark.parametrize("value", ["Coupon drop", "x", "  padded  ", "한정 쿠폰 ✓", "t" * MAX_TITLE])
def test_title_accepts_printable_text(value: str) -> None:
    assert validate(BASE, {"title": value}).title == value


@pytest.mark.parametrize(
    "value", ["", "   ", "t" * (MAX_TITLE + 1), "two\nlines", "tab\there", "nul\x00", "esc\x1b[31m", None, 5, ["x"]]
)
def test_title_rejects_the_rest(value: Any) -> None:
    rejects({"title": value}, "title")


@pytest.mark.parametrize(
    "value",
    [
        "/order/demo",
        "/",
        "/a?b=c#d",
        "https://shop.example/buy?x=1",
        "http://127.0.0.1:9000/order",
        "HTTPS://SHOP.example/",
    ],
)
def test_target_url_accepts_paths_and_http_urls(value: str) -> None:
    assert validate(BASE, {"target_url": value}).target_url == value


@pytest.mark.parametrize(
    "value",
    [
        "order/demo",  # relative to the page, not the site
        "//evil.example/steal",  # protocol-relative: another site
        "/\\evil.example/steal",  # browsers read /\ as //
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://files.example/x",
        "https:///no-host",
        "http:evil.example",
        " /order/demo",
        "/order\n/demo",
        "",
        "/" + "x" * 2000,
        None,
        42,
    ],
)
def test_target_url_rejects_the_rest(value: Any) -> None:
    rejects({"target_url": value}, "target_url")


@pytest.mark.parametrize("field", ["rate", "opens", "Title", "status ", "", "__class__"])
def test_unknown_fields_are_rejected_by_name(field: str) -> None:
    error = rejects({field: 1, "rate_per_minute": 60}, field)
    assert error.message == "is not a setting"


def test_the_first_unknown_field_is_named() -> None:
    rejects({"zeta": 1, "alpha": 2, "title": "ok"}, "alpha")


def random_settings(rng: random.Random) -> EventSettings:
    return EventSettings(
        title=rng.choice(["Coupons", "한정 쿠폰", 'a "quoted" title', "t" * MAX_TITLE]),
        rate_per_minute=rng.randint(*INTEGER_BOUNDS["rate_per_minute"]),
        max_active=rng.randint(*INTEGER_BOUNDS["max_active"]),
        token_ttl_seconds=rng.randint(*INTEGER_BOUNDS["token_ttl_seconds"]),
        session_ttl_seconds=rng.randint(*INTEGER_BOUNDS["session_ttl_seconds"]),
        abandon_after_seconds=rng.randint(*INTEGER_BOUNDS["abandon_after_seconds"]),
        opens_at=rng.choice([None, 0.0, 1_700_000_000.0, rng.uniform(0, 32_503_679_999), 1_700_000_000.123456789]),
        status=rng.choice(list(EventStatus)),
        target_url=rng.choice(["/order/x", "https://shop.example/buy?a=1&b=2"]),
        queue_only_when_full=rng.choice([True, False]),
        description=rng.choice(["", "One per customer.\n<b>Not</b> bold.", "d" * 1000]),
        logo_url=rng.choice([None, "/static/logo.svg", "https://cdn.shop.example/logo.png"]),
        accent_color=rng.choice([None, "#c2185b", "#000000"]),
    )


def test_redis_round_trip() -> None:
    rng = random.Random(11)
    for _ in range(500):
        settings = random_settings(rng)
        raw = settings.to_redis()
        assert all(isinstance(v, str) for v in raw.values())
        assert ("opens_at" in raw) is (settings.opens_at is not None)
        assert EventSettings.from_redis("x", raw) == settings


def test_from_redis_fills_defaults_and_ignores_strangers() -> None:
    assert EventSettings.from_redis("demo", {}) == BASE
    assert EventSettings.from_redis("demo", {"legacy": "1", "rate_per_minute": "30"}).rate_per_minute == 30


def test_to_json_is_plain_json() -> None:
    settings = validate(BASE, {"opens_at": 1_700_000_000.5, "status": "paused"})
    data = json.loads(json.dumps(settings.to_json()))
    assert data["status"] == "paused" and data["opens_at"] == 1_700_000_000.5
    assert set(data) == FIELDS


def test_the_page_settings_default_to_off_and_empty() -> None:
    assert (BASE.queue_only_when_full, BASE.description, BASE.logo_url, BASE.accent_color) == (False, "", None, None)


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("1", True), ("0", False)])
def test_queue_only_when_full_takes_booleans(value: Any, expected: bool) -> None:
    assert validate(BASE, {"queue_only_when_full": value}).queue_only_when_full is expected


@pytest.mark.parametrize("value", [1, 0, "yes", None, [], "on"])
def test_queue_only_when_full_rejects_the_rest(value: Any) -> None:
    rejects({"queue_only_when_full": value}, "queue_only_when_full")


@pytest.mark.parametrize(
    "value", ["", "Plain text.", "<script>alert(1)</script> stays text", "two\nlines\r\nand\ttabs", "한정 " * 250]
)
def test_description_accepts_plain_text_up_to_1000_characters(value: str) -> None:
    assert validate(BASE, {"description": value}).description == value


@pytest.mark.parametrize("value", ["x" * 1001, 5, ["a"], "bell\x07", "nul\x00", "del\x7f"])
def test_description_rejects_the_rest(value: Any) -> None:
    rejects({"description": value}, "description")


@pytest.mark.parametrize("value", ["/static/logo.svg", "/img/a.png?v=2", "https://cdn.shop.example/logo.png"])
def test_logo_url_accepts_https_urls_and_local_paths(value: str) -> None:
    assert validate(BASE, {"logo_url": value}).logo_url == value


@pytest.mark.parametrize("value", [None, ""])
def test_an_empty_logo_url_removes_the_logo(value: Any) -> None:
    with_logo = validate(BASE, {"logo_url": "/logo.svg"})
    assert validate(with_logo, {"logo_url": value}).logo_url is None


@pytest.mark.parametrize(
    "value",
    [
        "http://cdn.shop.example/logo.png",
        "javascript:alert(1)",
        "data:image/svg+xml,<svg/>",
        "//evil.example/logo.png",
        "/\\evil.example/logo.png",
        "logo.png",
        "https://",
        "https://user:pw@cdn.example/logo.png",
        "/a b.png",
        "https://cdn.example/\x00.png",
        "/" + "a" * 2000,
        42,
    ],
)
def test_logo_url_rejects_the_rest(value: Any) -> None:
    rejects({"logo_url": value}, "logo_url")


@pytest.mark.parametrize(
    ("value", "expected"), [("#1f5fa8", "#1f5fa8"), ("#C2185B", "#c2185b"), ("", None), (None, None)]
)
def test_accent_color_takes_rrggbb(value: Any, expected: str | None) -> None:
    assert validate(BASE, {"accent_color": value}).accent_color == expected


@pytest.mark.parametrize("value", ["red", "#fff", "#12345g", "123456", "#1234567", " #123456", 0x123456, "rgb(1,2,3)"])
def test_accent_color_rejects_the_rest(value: Any) -> None:
    rejects({"accent_color": value}, "accent_color")


def test_the_fast_lane_flag_is_stored_as_join_lua_reads_it() -> None:
    assert validate(BASE, {"queue_only_when_full": True}).to_redis()["queue_only_when_full"] == "1"
    assert BASE.to_redis()["queue_only_when_full"] == "0"
