"""Guard matching: path prefixes at segment boundaries, the longest first, or the operator's function."""

from __future__ import annotations

from typing import Any

import pytest

from waiting_room.gate.guard import by_prefix, compile_guard

RULES = {"/checkout": "spring-sale", "/checkout/vip": "vip-drop", "/api/orders/": "spring-sale"}


@pytest.mark.parametrize(
    ("path", "event"),
    [
        ("/checkout", "spring-sale"),
        ("/checkout/", "spring-sale"),
        ("/checkout/pay/now", "spring-sale"),
        ("/checkout/vip", "vip-drop"),
        ("/checkout/vip/seat/3", "vip-drop"),
        ("/checkout/vipers", "spring-sale"),
        ("/checkouts", None),
        ("/check", None),
        ("/", None),
        ("/api/orders", "spring-sale"),
        ("/api/orders/17", "spring-sale"),
        ("/api/ordersx", None),
        ("//checkout", "spring-sale"),
        ("/checkout//vip", "vip-drop"),
        ("/Checkout", None),
    ],
)
def test_a_prefix_covers_its_path_and_what_is_below_it(path: str, event: str | None) -> None:
    assert by_prefix(RULES)(path) == event


def test_the_root_prefix_guards_everything() -> None:
    match = by_prefix({"/": "all", "/static": "assets"})
    assert match("/") == "all" and match("/anything/else") == "all" and match("/static/a.css") == "assets"


@pytest.mark.parametrize("rules", [{"checkout": "e"}, {"/checkout": "Not An Event"}, {"/x": ""}])
def test_bad_rules_are_refused_at_wrap_time(rules: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        by_prefix(rules)


def test_a_callable_guard_sees_the_whole_scope() -> None:
    def by_store(scope: dict[str, Any]) -> str | None:
        query = scope["query_string"].decode()
        return "store-7-drop" if scope["path"].startswith("/buy") and "store=7" in query else None

    guard = compile_guard(by_store)
    assert guard({"path": "/buy/42", "query_string": b"store=7"}) == "store-7-drop"
    assert guard({"path": "/buy/42", "query_string": b"store=8"}) is None
    assert compile_guard(RULES)({"path": "/checkout/vip"}) == "vip-drop"


def test_a_callable_guard_naming_no_event_id_is_an_error() -> None:
    with pytest.raises(ValueError):
        compile_guard(lambda scope: "../etc")({"path": "/"})
    with pytest.raises(TypeError):
        compile_guard(42)  # type: ignore[arg-type]
