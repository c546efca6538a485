"""The gate in process: where it sends a browser after a redemption, who counts as a browser, https cookies."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from waiting_room.core.tokens import Claims, Signer
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


async def test_over_https_the_session_cookie_is_secure() -> None:
    """In process: the gate on an https scope, the waiting room answering as the contract says."""
    signer = Signer(ed25519.Ed25519PrivateKey.generate(), "https://queue.test")
    now = int(time.time())
    token = signer.mint(Claims("https://queue.test", "sale", "sale." + "A" * 24, "j", now, now + 60))

    def waiting_room(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json=signer.jwks)
        assert request.url.path == "/api/redeem"
        return httpx.Response(200, json={"event": "sale", "ticket": "t", "session_expires_at": now + 600})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    upstream = httpx.AsyncClient(transport=httpx.MockTransport(waiting_room))
    gate = AdmissionGate(
        app, waiting_room_url="https://queue.test", guard={"/buy": "sale"}, secret=SECRET, http_client=upstream
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="https://shop.test") as shop:
        r = await shop.get("/buy?token=" + token)
        assert r.status_code == 303 and r.headers["location"] == "/buy"
        assert r.headers["set-cookie"].endswith("; HttpOnly; SameSite=Lax; Secure")
        assert (await shop.get("/buy")).text == "app"
        assert (await shop.options("/buy", headers={"Origin": "https://app.test"})).text == "app"  # preflight
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="http://shop.test") as plain:
        assert (await plain.get("/buy")).status_code == 403
    await upstream.aclose()
