"""queue_only_when_full against real processes: two web processes, a promoter and a redis-server.

While nobody waits and capacity and the rate allow, a join is admitted at once; the
first arrival that finds no room queues, and from then on every newcomer queues
behind it. Bursts go to both web processes at once, so the decision is shown to be
atomic in Redis, not in one process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from support.cluster import TICK_MS, Cluster, running
from support.gated import ProtectedApp, protected_app
from support.waiting import poll
from support.ws import close_all

from waiting_room.store.keys import EventKeys

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

FAST = 1_000_000  # a rate that never binds: capacity alone decides


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("fast-lane"), webs=2, promoters=1) as made:
        yield made


@pytest.fixture(scope="module")
def shop(cluster: Cluster) -> Iterator[ProtectedApp]:
    """A protected app behind the gate, in its own process, sending browsers to this cluster's line."""
    with protected_app(cluster.root, cluster.public_url, cluster.env) as app:
        yield app


async def burst(cluster: Cluster, event: str, n: int) -> list[dict[str, Any]]:
    """`n` new visitors joining at once, alternately through both web processes; replies in send order."""
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:

        async def one(i: int) -> dict[str, Any]:
            client.cookies.clear()  # each a new visitor
            r = await client.post(cluster.url(f"/api/events/{event}/tickets", i % 2), json={})
            assert r.status_code == 201, r.text
            body: dict[str, Any] = r.json()
            return body

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def orders(cluster: Cluster, event: str, tickets: list[str]) -> dict[str, int]:
    """Each ticket's join sequence, as Redis recorded it (the order the joins really happened in)."""
    raw = cluster.redis.hmget(EventKeys(event).tickets, tickets)
    return {t: json.loads(r)["o"] for t, r in zip(tickets, raw, strict=True) if r}


def served(cluster: Cluster, event: str) -> int:
    return int(cluster.redis.hget(EventKeys(event).stats, "served_total") or 0)


def assert_admitted_reply(cluster: Cluster, event: str, body: dict[str, Any]) -> None:
    assert body["position"] is None and body["waiting"] == 0
    assert body["redirect"] == f"/order/{event}"
    claims = jwt.decode(
        body["token"], cluster.key.public_key(), algorithms=["EdDSA"], audience=event, issuer=cluster.public_url
    )
    assert claims["sub"] == body["ticket"] and claims["exp"] == body["expires_at"]


def test_a_burst_at_an_empty_event_admits_exactly_the_capacity_and_queues_the_rest_in_order(cluster: Cluster) -> None:
    event = "burst-200"
    cluster.put_event(event, queue_only_when_full=True, max_active=50, rate_per_minute=FAST)
    replies = asyncio.run(burst(cluster, event, 200))
    admitted = [r for r in replies if r["state"] == "admitted"]
    waiting = [r for r in replies if r["state"] == "waiting"]
    assert (len(admitted), len(waiting)) == (50, 150)
    for body in admitted:
        assert_admitted_reply(cluster, event, body)
    # the queued are in arrival order: their positions are their join order, 1..150, no gaps
    order = orders(cluster, event, [r["ticket"] for r in replies])
    by_arrival = sorted(waiting, key=lambda r: order[r["ticket"]])
    assert [r["position"] for r in by_arrival] == list(range(1, 151))
    # nobody was let in past someone waiting
    assert max(order[r["ticket"]] for r in admitted) < min(order[r["ticket"]] for r in waiting)
    stats = cluster.stats(event)
    assert (stats["served_total"], stats["admitted_pending"], stats["waiting"]) == (50, 50, 150)
    assert stats["tickets_issued"] == 200
    # GET /api/tickets answers an admitted-at-once ticket like any admitted one
    status = cluster.ticket(admitted[0]["ticket"], web=1)
    assert status["state"] == "admitted" and status["token"] == admitted[0]["token"]

    # capacity frees: the promoter lets the line in from its head, in arrival order
    for body in admitted[:10]:
        visitor = cluster.visitor()
        assert cluster.redeem(body["token"], visitor).status_code == 200
        assert visitor.post(cluster.url("/api/sessions/release")).status_code == 204
    poll(lambda: served(cluster, event) == 60, "ten more admissions from the line")
    first_ten = {r["ticket"] for r in by_arrival[:10]}
    states = {r["ticket"]: cluster.ticket(r["ticket"])["state"] for r in by_arrival[:11]}
    assert {t for t, s in states.items() if s == "admitted"} == first_ten
    assert served(cluster, event) == 60  # capacity bound the promoter too


def test_a_line_formed_mid_burst_takes_every_later_arrival(cluster: Cluster) -> None:
    """The rate runs out during a burst: while anyone waits, every arrival queues (FIFO). The promoter
    drains the line meanwhile, and once it is empty again the fast lane may admit again: that is fine,
    as long as nobody it admits ever had someone waiting ahead."""
    event = "mid-burst"
    cluster.put_event(event, queue_only_when_full=True, rate_per_minute=6000)  # ten a 100 ms tick
    replies = asyncio.run(burst(cluster, event, 120))
    at_once = {r["ticket"] for r in replies if r["state"] == "admitted"}
    queued = {r["ticket"] for r in replies if r["state"] == "waiting"}
    assert at_once and queued, f"{len(at_once)} admitted at once, {len(queued)} queued"
    poll(lambda: cluster.stats(event)["waiting"] == 0, "the line to drain")
    raw = cluster.redis.hgetall(EventKeys(event).tickets)
    records = {ticket: json.loads(r) for ticket, r in raw.items()}
    for ticket in at_once:
        fast = records[ticket]
        assert fast["a"] == fast["j"]  # admitted as it joined
        ahead = [records[q] for q in queued if records[q]["o"] < fast["o"]]
        assert all(q["a"] <= fast["a"] for q in ahead), "admitted at once while someone waited ahead"
    # and the line itself went in arrival order
    times = [rec["a"] for rec in sorted(records.values(), key=lambda rec: rec["o"])]
    assert times == sorted(times), "admitted out of arrival order"


def test_full_capacity_with_an_empty_line_queues_and_the_rest_follows_in_order(cluster: Cluster) -> None:
    event = "cap-full"
    cluster.put_event(event, queue_only_when_full=True, max_active=2, rate_per_minute=FAST)
    first, second = cluster.join(event), cluster.join(event, web=1)
    assert (first["state"], second["state"]) == ("admitted", "admitted")
    visitor = cluster.visitor()
    assert cluster.redeem(first["token"], visitor).status_code == 200  # one pending, one active: full
    third = cluster.join(event)
    assert (third["state"], third["position"], third["waiting"]) == ("waiting", 1, 1)
    assert "token" not in third
    assert visitor.post(cluster.url("/api/sessions/release")).status_code == 204
    # room again, but someone waits: a newcomer queues behind them and the promoter admits them first
    fourth = cluster.join(event, web=1)
    cluster.wait_state(third["ticket"], "admitted")
    raw = cluster.redis.hmget(EventKeys(event).tickets, [third["ticket"], fourth["ticket"]])
    third_record, fourth_record = (json.loads(r) for r in raw)
    if fourth["state"] == "admitted":  # only possible if the promoter had let the third in first
        assert third_record["a"] <= fourth_record["a"]
    elif fourth["position"] == 1:  # the third had been admitted before the fourth came
        assert third_record["a"] <= fourth_record["j"]
    else:
        assert fourth["position"] == 2
    stats = cluster.stats(event)
    assert stats["admitted_pending"] + stats["active"] <= 2


def test_the_rate_binds_the_fast_lane(cluster: Cluster) -> None:
    """60 a minute: a burst gets at most what the bucket holds (one ticket) plus what accrues meanwhile."""
    event = "rate-binds"
    rate = 60
    cluster.put_event(event, queue_only_when_full=True, rate_per_minute=rate)
    started = time.monotonic()
    replies = asyncio.run(burst(cluster, event, 40))
    elapsed = time.monotonic() - started
    admitted = sum(r["state"] == "admitted" for r in replies)
    share = rate / 60 * TICK_MS / 1000
    assert 1 <= admitted <= max(1, share) + rate / 60 * elapsed, f"{admitted} admitted in {elapsed:.2f} s"
    # and the promoter, spending the same bucket, keeps to the rate while the line drains
    queued = [r["ticket"] for r in replies if r["state"] == "waiting"]
    head = min(queued, key=orders(cluster, event, queued).__getitem__)
    poll(lambda: cluster.ticket(head)["state"] == "admitted", "the head of the line to be admitted")
    assert cluster.stats(event)["served_total"] <= admitted + 1 + rate / 60 * (time.monotonic() - started) + share


def test_fast_lane_admissions_count_as_admissions_and_keep_sockets_right(cluster: Cluster) -> None:
    event = "counted"
    cluster.put_event(event, queue_only_when_full=True, max_active=3, rate_per_minute=FAST)
    replies = [cluster.join(event, web=i % 2) for i in range(5)]
    assert [r["state"] for r in replies] == ["admitted"] * 3 + ["waiting"] * 2
    metrics = cluster.http.get(cluster.url("/metrics", 1)).text
    assert f'wr_event_tickets{{event="{event}",outcome="admitted"}} 3.0' in metrics
    assert cluster.stats(event)["served_total"] == 3

    async def watch() -> None:
        # served_total jumped by 3 without anyone leaving the line: ranks on either process stay exact
        clients = [cluster.ws(replies[3]["ticket"], 0), cluster.ws(replies[4]["ticket"], 1)]
        try:
            await asyncio.gather(*(c.connect() for c in clients))
            first, second = [await c.wait_for("position") for c in clients]
            assert (first.data["position"], second.data["position"]) == (1, 2)
            assert first.data["served_total"] == second.data["served_total"] == 3
            early = cluster.ws(replies[0]["ticket"], 1)
            clients.append(early)
            await early.connect()
            message = await early.wait_for("admitted")
            assert message.data["token"] == replies[0]["token"]
        finally:
            await close_all(clients)

    asyncio.run(watch())


def test_off_by_default(cluster: Cluster) -> None:
    event = "no-fast-lane"
    settings = cluster.put_event(event, rate_per_minute=FAST)
    assert settings["queue_only_when_full"] is False
    joined = cluster.join(event)
    assert (joined["state"], joined["position"]) == ("waiting", 1)
    page = cluster.visitor().get(cluster.url(f"/e/{event}"), follow_redirects=False)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_the_theme_stylesheet_is_a_pure_function_of_the_colour(cluster: Cluster) -> None:
    css = cluster.http.get(cluster.url("/theme/ffcc00.css"))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert "prefers-color-scheme: dark" in css.text and "--on-accent" in css.text
    for bad in ("/theme/ffcc0.css", "/theme/red.css", "/theme/ffcc00g.css"):
        assert cluster.http.get(cluster.url(bad)).status_code == 404


def test_the_waiting_page_sends_an_admitted_visitor_straight_to_the_target(cluster: Cluster) -> None:
    event = "page-fast"
    cluster.put_event(event, queue_only_when_full=True, max_active=1, rate_per_minute=FAST)
    browser = cluster.visitor()
    page = browser.get(cluster.url(f"/e/{event}"), follow_redirects=False)
    assert page.status_code == 303, page.text
    location = urlsplit(page.headers["location"])
    assert location.path == f"/order/{event}"
    [token] = parse_qs(location.query)["token"]
    assert browser.cookies.get("wr_uid")
    # the same visitor again: the same admission, not a second one
    again = browser.get(cluster.url(f"/e/{event}"), follow_redirects=False)
    assert again.status_code == 303 and parse_qs(urlsplit(again.headers["location"]).query)["token"] == [token]
    # the target redeems it and the visitor is in
    order = browser.get(cluster.url(page.headers["location"]), follow_redirects=False)
    assert order.status_code == 303 and order.headers["location"] == f"/order/{event}"
    assert browser.get(cluster.url(f"/order/{event}")).status_code == 200
    assert cluster.stats(event)["active"] == 1

    # full now: the next visitor gets the page, already holding a place that the page's own join finds
    other = cluster.visitor()
    page = other.get(cluster.url(f"/e/{event}"), follow_redirects=False)
    assert page.status_code == 200 and other.cookies.get("wr_uid")
    assert cluster.stats(event)["waiting"] == 1
    joined = other.post(cluster.url(f"/api/events/{event}/tickets"), json={})
    assert joined.status_code == 200 and joined.json()["position"] == 1


def test_through_the_gate_a_browser_reaches_the_app_with_no_page(cluster: Cluster, shop: ProtectedApp) -> None:
    """gate -> /e/{event} -> target?token= -> the gate redeems -> the app, all redirects; then, full, the line."""
    event = "gated-fast"
    path = f"/guarded/{event}/checkout"
    cluster.put_event(event, queue_only_when_full=True, max_active=1, target_url=f"{shop.base}{path}")
    browser = shop.client(browser=True)
    r = browser.get(path, follow_redirects=True)
    assert r.status_code == 200 and r.json()["path"] == path, r.text
    hops = [(h.status_code, str(h.url)) for h in r.history]
    assert [status for status, _ in hops] == [303, 303, 303]  # gate, the waiting room's page, the gate again
    assert hops[1][1] == cluster.url(f"/e/{event}")
    assert not any("text/html" in h.headers.get("content-type", "") for h in r.history)
    stats = cluster.stats(event)
    assert (stats["served_total"], stats["active"], stats["waiting"]) == (1, 1, 0)

    # capacity is held by that session: the next browser is shown the waiting page
    other = shop.client(browser=True)
    r = other.get(path, follow_redirects=True)
    assert r.status_code == 200 and str(r.url) == cluster.url(f"/e/{event}")
    assert "text/html" in r.headers["content-type"]
    assert cluster.stats(event)["waiting"] == 1
