"""The gate against real processes: redis-server, `waiting-room web` and `promoter`, and a protected app.

The protected app (tests/support/protected.py) runs in its own uvicorn
process and guards `/guarded/{event}/...`; each test uses its own event.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.cluster import Cluster, running, write_ed25519_key
from support.gated import ProtectedApp, protected_app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("gate")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def shop(cluster: Cluster) -> Iterator[ProtectedApp]:
    with protected_app(cluster.root, cluster.public_url, cluster.env) as app:
        yield app


def admitted_token(cluster: Cluster, event: str) -> str:
    ticket = cluster.join(event)["ticket"]
    token: str = cluster.wait_state(ticket, "admitted")["token"]
    return token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bad_signature(token: str) -> str:
    """One base64 digit changed mid-signature (the last digit may carry only padding bits)."""
    head, payload, sig = token.split(".")
    return f"{head}.{payload}.{sig[:10]}{'A' if sig[10] != 'A' else 'B'}{sig[11:]}"


def claims_of(token: str) -> dict[str, Any]:
    data: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return data


def error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def gate_cookie(response: httpx.Response, event: str) -> str:
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"wr_gate_{event}=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_unguarded_requests_pass_untouched(shop: ProtectedApp) -> None:
    client = shop.client(browser=True)
    r = client.post(
        "/products/7?token=not-ours&x=1",
        content=b"token=also-not-ours",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert r.json() == {
        "app": "protected",
        "method": "POST",
        "path": "/products/7",
        "query": "token=not-ours&x=1",
        "body": "token=also-not-ours",
        "content_type": "application/x-www-form-urlencoded",
    }
    assert "set-cookie" not in r.headers


def test_without_a_session_browsers_are_sent_to_the_line_and_api_clients_told_how_to_join(
    cluster: Cluster, shop: ProtectedApp, event_id: str
) -> None:
    cluster.put_event(event_id)
    r = shop.client(browser=True).get(f"/guarded/{event_id}/checkout")
    assert r.status_code == 303
    assert r.headers["location"] == f"{cluster.public_url}/e/{event_id}"
    r = shop.client().post(f"/guarded/{event_id}/api/orders", json={"sku": 1})
    assert r.status_code == 403
    assert error(r) == {
        "code": "admission_required",
        "message": error(r)["message"],
        "event": event_id,
        "page": f"{cluster.public_url}/e/{event_id}",
        "join": f"{cluster.public_url}/api/events/{event_id}/tickets",
    }
    joined = httpx.post(error(r)["join"], json={}, trust_env=False)  # the URL given is the real join call
    assert joined.status_code == 201 and joined.json()["event"] == event_id


def test_the_full_journey_with_capacity_one(cluster: Cluster, shop: ProtectedApp, event_id: str) -> None:
    """join -> admitted -> redeemed at the gate -> session -> release -> the next ticket admitted."""
    cluster.put_event(event_id, max_active=1)
    first = cluster.join(event_id)["ticket"]
    token = cluster.wait_state(first, "admitted")["token"]
    second = cluster.join(event_id)["ticket"]
    browser = shop.client(browser=True)
    path = f"/guarded/{event_id}/checkout"

    r = browser.post(path, data={"token": token})
    assert r.status_code == 303 and r.headers["location"] == path
    cookie = gate_cookie(r, event_id)
    assert "HttpOnly" in cookie and "Secure" not in cookie and "Path=/" in cookie
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 0 < max_age <= 600
    assert cluster.ticket(first)["state"] == "redeemed"

    r = browser.get(path)
    assert r.status_code == 200 and r.json()["path"] == path
    r = browser.post(f"/guarded/{event_id}/api/orders", json={"sku": 7})
    assert r.status_code == 200 and r.json()["body"] == '{"sku":7}'
    assert cluster.ticket(second)["state"] == "waiting"  # capacity is held by the session
    assert cluster.stats(event_id)["active"] == 1

    r = browser.post("/.waiting-room/release")
    assert r.status_code == 204
    assert "Max-Age=0" in gate_cookie(r, event_id)
    assert cluster.stats(event_id)["active"] == 0
    next_token = cluster.wait_state(second, "admitted")["token"]

    r = browser.get(path)  # the session is over
    assert r.status_code == 303 and r.headers["location"] == f"{cluster.public_url}/e/{event_id}"

    # the next visitor arrives as the waiting page (or a fast lane) sends it: ?token= in the URL
    other = shop.client(browser=True)
    r = other.get(f"{path}?a=1&token={next_token}&b=%2F")
    assert r.status_code == 303 and r.headers["location"] == f"{path}?a=1&b=%2F"
    assert other.get(r.headers["location"]).json()["query"] == "a=1&b=%2F"


def test_an_api_client_with_a_bearer_token_passes_on_with_a_session(
    cluster: Cluster, shop: ProtectedApp, event_id: str
) -> None:
    cluster.put_event(event_id)
    token = admitted_token(cluster, event_id)
    api = shop.client()
    r = api.post(f"/guarded/{event_id}/api/orders", json={"sku": 3}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["body"] == '{"sku":3}'
    gate_cookie(r, event_id)
    r = api.post(f"/guarded/{event_id}/api/orders", json={"sku": 4})  # the cookie jar holds the session
    assert r.status_code == 200 and r.json()["body"] == '{"sku":4}'
    r = api.post(f"/guarded/{event_id}/api/orders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200  # a live session is enough: the spent token is not looked at again
    r = shop.client().post(f"/guarded/{event_id}/api/orders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 409 and error(r)["code"] == "token_used"


def test_bad_tokens_are_refused_and_none_is_spent(cluster: Cluster, shop: ProtectedApp, event_id: str) -> None:
    cluster.put_event(event_id)
    other_event = event_id + "-b"
    cluster.put_event(other_event)
    token = admitted_token(cluster, event_id)
    claims = claims_of(token)
    head, payload, signature = token.split(".")
    kid = jwt.get_unverified_header(token)["kid"]
    now = int(time.time())

    tampered = {**claims, "sub": claims["sub"][:-1] + ("A" if claims["sub"][-1] != "A" else "B")}
    foreign = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    expired = jwt.encode(
        {**claims, "iat": now - 600, "exp": now - 60}, cluster.key, algorithm="EdDSA", headers={"kid": kid}
    )
    none = f"{b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{payload}."
    refusals = {
        f"{head}.{b64(json.dumps(tampered).encode())}.{signature}": "invalid_token",
        foreign: "invalid_token",
        expired: "token_expired",
        none: "invalid_token",
        admitted_token(cluster, other_event): "invalid_token",  # valid, but for another event
        bad_signature(token): "invalid_token",
        "garbage": "invalid_token",
    }
    path = f"/guarded/{event_id}/checkout"
    for bad, code in refusals.items():
        r = shop.client().get(path, params={"token": bad})
        assert r.status_code == 401, (code, r.text)
        assert error(r)["code"] == code
        page = shop.client(browser=True).post(path, data={"token": bad})
        assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
        assert "set-cookie" not in page.headers
    assert cluster.ticket(claims["sub"])["state"] == "admitted"  # none of that spent the real one

    assert shop.client(browser=True).post(path, data={"token": token}).status_code == 303
    r = shop.client().get(path, params={"token": token})
    assert r.status_code == 409 and error(r)["code"] == "token_used"
    page = shop.client(browser=True).get(path, params={"token": token})
    assert page.status_code == 409 and "already used" in page.text


def test_the_session_is_bound_to_its_event(cluster: Cluster, shop: ProtectedApp, event_id: str) -> None:
    other_event = event_id + "-b"
    for event in (event_id, other_event):
        cluster.put_event(event)
    browser = shop.client(browser=True)
    r = browser.post(f"/guarded/{event_id}/checkout", data={"token": admitted_token(cluster, event_id)})
    assert r.status_code == 303
    assert browser.get(f"/guarded/{event_id}/checkout").status_code == 200
    assert browser.get(f"/guarded/{other_event}/checkout").status_code == 303
    value = gate_cookie(r, event_id).split(";")[0].split("=", 1)[1]
    forged = shop.client(browser=True)
    forged.cookies.set(f"wr_gate_{other_event}", value)  # a real session of one event under another's name
    assert forged.get(f"/guarded/{other_event}/checkout").status_code == 303


def test_the_waiting_room_down(cluster_factory: Any, tmp_path: Path, event_id: str) -> None:
    """Unguarded and session traffic never notice; a redemption during the outage is 503 and not spent."""
    cluster: Cluster = cluster_factory()
    cluster.put_event(event_id)
    with protected_app(tmp_path, cluster.public_url, cluster.env) as shop:
        path = f"/guarded/{event_id}/checkout"
        holder = shop.client(browser=True)
        assert holder.post(path, data={"token": admitted_token(cluster, event_id)}).status_code == 303
        pending = admitted_token(cluster, event_id)
        cluster.kill_web(0)

        assert shop.client().get("/products").status_code == 200
        assert holder.get(path).status_code == 200
        assert shop.client(browser=True).get(path).status_code == 303
        assert shop.client().get(path).status_code == 403
        r = shop.client().get(path, params={"token": pending})
        assert r.status_code == 503 and error(r)["code"] == "unavailable" and r.headers["retry-after"]
        page = shop.client(browser=True).post(path, data={"token": pending})
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert holder.post("/.waiting-room/release").status_code == 503  # kept, to be retried

        cluster.start_web(0)
        again = shop.client(browser=True)
        assert again.post(path, data={"token": pending}).status_code == 303
        assert again.get(path).status_code == 200
        assert holder.post("/.waiting-room/release").status_code == 204


def test_key_rotation_keeps_tokens_in_flight(cluster_factory: Any, tmp_path: Path, event_id: str) -> None:
    """New key signs, the old one stays in the JWKS: a token minted before the switch still redeems,
    and the gate picks the new kid up by refetching the JWKS."""
    cluster: Cluster = cluster_factory()
    cluster.put_event(event_id)
    with protected_app(tmp_path, cluster.public_url, cluster.env) as shop:
        path = f"/guarded/{event_id}/checkout"
        assert (
            shop.client(browser=True).post(path, data={"token": admitted_token(cluster, event_id)}).status_code == 303
        )
        in_flight = admitted_token(cluster, event_id)
        old_kid = jwt.get_unverified_header(in_flight)["kid"]

        new_key = tmp_path / "signing-key-2.pem"
        write_ed25519_key(new_key)
        cluster.kill_web(0)
        cluster.env.update(WR_SIGNING_KEY=str(new_key), WR_VERIFY_KEYS=str(cluster.key_path))
        cluster.start_web(0)
        kids = [k["kid"] for k in cluster.http.get(cluster.url("/.well-known/jwks.json")).json()["keys"]]
        fresh = admitted_token(cluster, event_id)
        new_kid = jwt.get_unverified_header(fresh)["kid"]
        assert kids == [new_kid, old_kid]

        assert shop.client(browser=True).post(path, data={"token": fresh}).status_code == 303
        assert shop.client(browser=True).post(path, data={"token": in_flight}).status_code == 303

        # retired: once the old key is dropped, what it signed is refused at redemption
        late = claims_of(admitted_token(cluster, event_id))
        by_old_key = jwt.encode(late, cluster.key, algorithm="EdDSA", headers={"kid": old_kid})
        cluster.kill_web(0)
        del cluster.env["WR_VERIFY_KEYS"]
        cluster.start_web(0)
        r = shop.client().get(path, params={"token": by_old_key})
        assert r.status_code == 401 and error(r)["code"] == "invalid_token"
        assert cluster.ticket(late["sub"])["state"] == "admitted"


def test_the_waiting_room_releases_by_the_redeemed_token(cluster: Cluster, event_id: str) -> None:
    """What the gate's release relies on: `POST /api/sessions/release {"token"}` with no cookie of ours."""
    cluster.put_event(event_id)
    token = admitted_token(cluster, event_id)
    release = cluster.url("/api/sessions/release")
    r = cluster.http.post(release, json={"token": token})
    assert r.status_code == 401 and r.json()["error"]["code"] == "no_session"  # admitted, not yet redeemed
    assert cluster.redeem(token).status_code == 200
    assert cluster.stats(event_id)["active"] == 1
    for forged in ("garbage", bad_signature(token), token.split(".")[0] + ".e30."):
        r = cluster.http.post(release, json={"token": forged})
        assert r.status_code == 401 and r.json()["error"]["code"] == "no_session"
    assert cluster.stats(event_id)["active"] == 1
    assert cluster.http.post(release, json={"token": token}).status_code == 204
    assert cluster.stats(event_id)["active"] == 0
    assert cluster.http.post(release, json={"token": token}).status_code == 401
