"""Sessions at the target, over real processes: the cookie is a secret of its own (never the ticket id,
which travels in URLs and logs), and a session ends by its cookie or by the token that opened it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest
from support.cluster import Cluster, running

pytestmark = pytest.mark.usefixtures("deadline")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("sessions"), webs=1, promoters=1) as made:
        yield made


@pytest.fixture
def event(cluster: Cluster) -> str:
    name = f"ses-{uuid4().hex[:8]}"
    cluster.put_event(name, rate_per_minute=6000, max_active=1)
    return name


def redeemed(c: Cluster, event: str) -> tuple[httpx.Client, dict[str, Any], str]:
    """A visitor who joined, was admitted and redeemed: (its client, its ticket JSON, the token)."""
    visitor = c.visitor()
    ticket = c.join(event, client=visitor)
    token = c.wait_state(ticket["ticket"], "admitted")["token"]
    r = c.redeem(token, client=visitor)
    assert r.status_code == 200, r.text
    return visitor, ticket, token


def release(c: Cluster, client: httpx.Client, **kwargs: Any) -> tuple[int, str | None]:
    r = client.post(c.url("/api/sessions/release"), **kwargs)
    return r.status_code, (r.json()["error"]["code"] if r.status_code != 204 else None)


def test_the_cookie_is_a_secret_of_its_own(cluster: Cluster, event: str) -> None:
    c = cluster
    visitor, ticket, token = redeemed(c, event)
    cookie = visitor.cookies["wr_session"]
    random_part = ticket["ticket"].partition(".")[2]
    assert random_part not in cookie and cookie not in (ticket["ticket"], token)
    assert jwt.decode(token, options={"verify_signature": False})["jti"] not in cookie

    # who knows only the ticket id (from a URL, a log) has no session: not at the target, not to release
    spy = httpx.Client(trust_env=False, timeout=10, cookies={"wr_session": ticket["ticket"]})
    try:
        page = spy.get(c.url(f"/order/{event}"), follow_redirects=False)
        assert (page.status_code, page.headers["location"]) == (303, f"/e/{event}")
        assert release(c, spy) == (401, "no_session")
        assert release(c, spy, json={"token": ticket["ticket"]}) == (401, "no_session")
    finally:
        spy.close()
    assert c.stats(event)["active"] == 1
    assert visitor.get(c.url(f"/order/{event}"), follow_redirects=False).status_code == 200


def test_release_by_cookie_frees_the_capacity_at_once(cluster: Cluster, event: str) -> None:
    c = cluster
    visitor, _, _ = redeemed(c, event)
    behind = c.join(event)["ticket"]
    assert c.stats(event)["active"] == 1
    assert release(c, visitor) == (204, None)
    assert c.stats(event)["active"] == 0  # at once, not at the next tick
    assert release(c, visitor) == (401, "no_session")
    c.wait_state(behind, "admitted")


def test_release_by_the_redeemed_token_frees_the_capacity_at_once(cluster: Cluster, event: str) -> None:
    c = cluster
    visitor, _, token = redeemed(c, event)
    backend = c.visitor()  # a protected backend that kept the token, not the browser's cookie
    assert release(c, backend, json={"token": token}) == (204, None)
    assert c.stats(event)["active"] == 0
    assert release(c, backend, json={"token": token}) == (401, "no_session")
    assert release(c, visitor) == (401, "no_session")  # the cookie's session is over too
    assert visitor.get(c.url(f"/order/{event}"), follow_redirects=False).status_code == 303


def test_the_token_releases_after_it_expired_while_the_session_lives(cluster: Cluster, event: str) -> None:
    """A session outlives its token (600 s against 300 s by default): the token must still end it."""
    c = cluster
    _, _, token = redeemed(c, event)
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    expired = jwt.encode(
        {**claims, "iat": now - 600, "exp": now - 60},
        c.key,
        algorithm="EdDSA",
        headers={"kid": jwt.get_unverified_header(token)["kid"]},
    )
    assert release(c, c.visitor(), json={"token": expired}) == (204, None)
    assert c.stats(event)["active"] == 0


@pytest.mark.parametrize("body", [None, {}, {"token": None}, {"token": "not.a.token"}, {"token": 7}, b"{bad"])
def test_without_a_session_or_its_token_release_is_401(cluster: Cluster, body: Any) -> None:
    sent = {"content": body} if isinstance(body, bytes) else {} if body is None else {"json": body}
    assert release(cluster, cluster.visitor(), **sent) == (401, "no_session")


def test_a_token_not_yet_redeemed_releases_nothing(cluster: Cluster, event: str) -> None:
    c = cluster
    ticket = c.join(event)["ticket"]
    token = c.wait_state(ticket, "admitted")["token"]
    assert release(c, c.visitor(), json={"token": token}) == (401, "no_session")
    assert c.redeem(token).status_code == 200  # and it still redeems
