"""The gate's pure helpers: where it sends a browser after a redemption, and who counts as a browser."""

from __future__ import annotations

import pytest

from waiting_room.gate import AdmissionGate
from waiting_room.gate.middleware import _is_browser, _location, _query_without_token

SECRET = "a shop's gate secret, long enough"


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("token=abc", ""),
        ("a=1&token=abc&b=%2F+x", "a=1&b=%2F+x"),
        ("token=1&token=2&tokens=3", "tokens=3"),
        ("to%6Ben=abc&x=", "x="),  # an encoded name is still `token`
        ("mytoken=1&token", "mytoken=1"),
        ("", ""),
    ],
)
def test_only_the_token_leaves_the_query(query: str, kept: str) -> None:
    assert _query_without_token(query) == kept


def test_the_redirect_keeps_the_path_as_sent() -> None:
    scope = {"path": "/checkout/é", "raw_path": b"/checkout/%C3%A9", "query_string": b"token=t&x=1"}
    assert _location(scope) == "/checkout/%C3%A9?x=1"
    assert _location({"path": "/checkout/é", "root_path": "", "query_string": b"token=t"}) == "/checkout/%C3%A9"


def test_a_browser_is_whoever_accepts_html() -> None:
    assert _is_browser({"headers": [(b"accept", b"text/html,application/xhtml+xml;q=0.9")]})
    assert not _is_browser({"headers": [(b"accept", b"application/json")]})
    assert not _is_browser({"headers": []})


@pytest.mark.parametrize(
    "options",
    [
        {"waiting_room_url": "queue.example.com", "guard": {}, "secret": SECRET},
        {"waiting_room_url": "https://q.example", "guard": {"/x": "Bad Event"}, "secret": SECRET},
        {"waiting_room_url": "https://q.example", "guard": {}, "secret": "short"},
    ],
)
def test_misconfiguration_fails_at_wrap_time(options: dict[str, object]) -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError):
        AdmissionGate(app, **options)  # type: ignore[arg-type]
