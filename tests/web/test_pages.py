"""Pure helpers of the pages: where an admitted-at-once visitor is sent."""

from __future__ import annotations

import pytest

from waiting_room.web.pages import with_token


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/order/demo", "/order/demo?token=T"),
        ("https://shop.example/checkout", "https://shop.example/checkout?token=T"),
        ("https://shop.example/checkout?step=2", "https://shop.example/checkout?step=2&token=T"),
        ("https://shop.example/c?token=old&a=1", "https://shop.example/c?a=1&token=T"),
        ("https://shop.example/c#pay", "https://shop.example/c?token=T#pay"),
    ],
)
def test_with_token_adds_the_token_to_the_query(target: str, expected: str) -> None:
    assert with_token(target, "T") == expected


def test_with_token_escapes_the_token() -> None:
    assert with_token("/o", "a+b/c=") == "/o?token=a%2Bb%2Fc%3D"
