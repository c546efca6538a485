"""The product as separate processes: web processes, promoters and a redis-server, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.cluster import TICK_MS, Cluster, running
from support.promoting import max_in_window
from support.redis_server import records
from support.waiting import poll, until
from support.ws import WsClient, close_all

from waiting_room.store.keys import EventKeys

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

TICK_S = TICK_MS / 1000


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two web processes and two promoters, shared by the tests that stop no process (each uses its own event)."""
    with running(tmp_path_factory.mktemp("shared"), webs=2, promoters=2) as cluster:
        yield cluster


@pytest.fixture
def event(event_id: str) -> str:
    return event_id


def rate_bound(rate_per_minute: int) -> float:
    """Most admissions in any one second: the rate plus one tick's share."""
    return rate_per_minute / 60 + rate_per_minute / 60 * TICK_S


async def open_sockets(cluster: Cluster, tickets: list[str], webs: list[int]) -> list[WsClient]:
    clients = [cluster.ws(t, web) for t, web in zip(tickets, webs, strict=True)]
    await asyncio.gather(*(c.connect() for c in clients))
    await until(lambda: all(c.of("position") for c in clients), "a position on every socket")
    return clients


def assert_never_up(clients: list[WsClient]) -> None:
    for c in clients:
        positions = c.ranks()
        assert positions == sorted(positions, reverse=True), f"{c.ticket}: position went up: {positions}"


def served(cluster: Cluster, event: str) -> int:
    return int(cluster.redis.hget(EventKeys(event).stats, "served_total") or 0)


async def test_admission_is_fifo_across_two_web_processes(shared_cluster: Cluster, event: str) -> None:
    c = shared_cluster
    c.put_event(event, status="paused", rate_per_minute=600)  # one a tick
    tickets = [c.join(event, web=i % 2)["ticket"] for i in range(16)]
    webs = [(i // 2) % 2 for i in range(len(tickets))]
    clients = await open_sockets(c, tickets, webs)
    try:
        assert [cl.ranks()[0] for cl in clients] == list(range(1, len(tickets) + 1))
        await asyncio.to_thread(c.set_status, event, "open")
        await until(lambda: all(cl.admitted for cl in clients), "every socket to be admitted", within=30)
    finally:
        await close_all(clients)
    admitted_ms = [records(c.redis, event)[t].admitted_ms for t in tickets]
    assert admitted_ms == sorted(admitted_ms), "the promoter did not admit in join order"
    for web in (0, 1):
        mine = [cl for cl, w in zip(clients, webs, strict=True) if w == web]
        for i, earlier in enumerate(mine):
            for later in mine[i + 1 :]:
                assert later.admitted and earlier.admitted
                assert later.admitted.at >= earlier.admitted.at - TICK_S, (
                    f"web {web}: {later.ticket} was told before {earlier.ticket}, who joined earlier"
                )
    assert_never_up(clients)


async def test_exactly_once_with_two_promoters(shared_cluster: Cluster, event: str) -> None:
    c = shared_cluster
    rate = 1200
    c.put_event(event, status="paused", rate_per_minute=rate)
    tickets = [c.join(event, web=i % 2)["ticket"] for i in range(40)]
    clients = await open_sockets(c, tickets, [(i + 1) % 2 for i in range(len(tickets))])
    try:
        await asyncio.to_thread(c.set_status, event, "open")
        await until(lambda: all(cl.admitted for cl in clients), "every socket to be admitted", within=30)
        # a marker published after: a second `admitted` sent before it would have arrived with it
        marker = await asyncio.to_thread(
            c.admin.post, c.url(f"/api/admin/events/{event}/notices"), json={"text": "marker", "level": "info"}
        )
        assert marker.status_code == 201, marker.text
        await until(lambda: all(cl.of("notice") for cl in clients), "the marker on every socket")
    finally:
        await close_all(clients)
    assert c.leader(event) is not None
    assert [len(cl.of("admitted")) for cl in clients] == [1] * len(tickets)
    assert_never_up(clients)
    stats = c.stats(event)
    assert (stats["served_total"], stats["waiting"], stats["admitted_pending"]) == (len(tickets), 0, len(tickets))
    found = records(c.redis, event)
    assert max_in_window([found[t].admitted_ms or 0 for t in tickets], 1000) <= rate_bound(rate)
    for i, client in enumerate(clients):
        assert client.admitted is not None
        token = client.admitted.data["token"]
        assert c.ticket(client.ticket, web=i % 2)["token"] == token  # every process mints the same token
        first = c.redeem(token)
        assert first.status_code == 200, first.text
        assert (first.json()["ticket"], first.json()["event"]) == (client.ticket, event)
        again = c.redeem(token)
        assert (again.status_code, again.json()["error"]["code"]) == (409, "token_used")
    assert c.stats(event)["redeemed"] == len(tickets)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def error_of(r: httpx.Response) -> tuple[int, str]:
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), r.text
    return r.status_code, body["error"]["code"]


def test_forged_expired_and_replayed_tokens_are_refused(shared_cluster: Cluster, event: str) -> None:
    c = shared_cluster
    c.put_event(event, rate_per_minute=6000)
    ticket = c.join(event)["ticket"]
    other = c.join(event)["ticket"]
    token = c.wait_state(ticket, "admitted")["token"]
    header = jwt.get_unverified_header(token)
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    assert (header["alg"], claims["sub"], claims["aud"]) == ("EdDSA", ticket, event)

    head, _, signature = token.split(".")
    tampered = ".".join([head, b64url(json.dumps({**claims, "sub": other}).encode()), signature])
    foreign = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]})
    now = int(time.time())
    expired = jwt.encode(
        {**claims, "iat": now - 600, "exp": now - 60}, c.key, algorithm="EdDSA", headers={"kid": header["kid"]}
    )
    assert error_of(c.redeem(tampered)) == (401, "invalid_token")
    assert error_of(c.redeem(foreign)) == (401, "invalid_token")
    assert error_of(c.redeem(expired)) == (401, "token_expired")
    assert error_of(c.redeem("not.a.token")) == (401, "invalid_token")
    assert error_of(c.redeem(None)) == (401, "invalid_token")
    assert c.redeem(token).status_code == 200
    assert error_of(c.redeem(token)) == (409, "token_used")


def test_capacity_holds_and_release_frees_it(shared_cluster: Cluster, event: str) -> None:
    c = shared_cluster
    c.put_event(event, status="paused", rate_per_minute=6000, max_active=2)
    visitors = [c.visitor() for _ in range(4)]
    tickets = [c.join(event, client=v)["ticket"] for v in visitors]
    c.set_status(event, "open")
    first = c.wait_state(tickets[0], "admitted")
    c.wait_state(tickets[1], "admitted")
    for _ in range(10):  # a second of ticks: nobody else gets in
        stats = c.stats(event)
        assert stats["admitted_pending"] + stats["active"] <= 2, stats
        time.sleep(TICK_S)
    assert [c.ticket(t)["state"] for t in tickets[2:]] == ["waiting", "waiting"]

    redeemed = c.redeem(first["token"], client=visitors[0])
    assert redeemed.status_code == 200
    time.sleep(5 * TICK_S)
    assert c.ticket(tickets[2])["state"] == "waiting", "a redeemed session must still hold capacity"
    released = visitors[0].post(c.url("/api/sessions/release"))
    assert released.status_code == 204
    assert error_of(visitors[0].post(c.url("/api/sessions/release"))) == (401, "no_session")
    c.wait_state(tickets[2], "admitted")
    time.sleep(5 * TICK_S)
    assert c.ticket(tickets[3])["state"] == "waiting"
    stats = c.stats(event)
    assert stats["admitted_pending"] + stats["active"] == 2
    assert error_of(c.visitor().post(c.url("/api/sessions/release"))) == (401, "no_session")


async def test_websocket_close_codes(shared_cluster: Cluster, event: str) -> None:
    c = shared_cluster
    c.put_event(event, status="paused")
    tickets = [c.join(event)["ticket"] for _ in range(4)]
    unknown = await c.ws(f"{event}.{'A' * 24}").connect()
    garbage = await c.ws("no-such-ticket").connect()
    foreign = await c.ws(tickets[0], origin="http://evil.example").connect()
    not_json = await c.ws(tickets[0]).connect()
    too_big = await c.ws(tickets[1]).connect()
    first = await c.ws(tickets[2], web=0).connect()
    no_origin = await c.ws(tickets[3], origin=None).connect()
    clients = [unknown, garbage, foreign, not_json, too_big, first, no_origin]
    try:
        assert await unknown.closed() == 4404
        assert await garbage.closed() == 4404
        assert await foreign.closed() == 4403
        await not_json.wait_for("position")
        await not_json.send("hello")
        assert await not_json.closed() == 4400
        await too_big.wait_for("position")
        await too_big.send(json.dumps({"pad": "x" * 1100}))
        assert await too_big.closed() == 1009
        await first.wait_for("position")
        second = await c.ws(tickets[2], web=0).connect()
        clients.append(second)
        assert await first.closed() == 4001
        await second.wait_for("position")
        elsewhere = await c.ws(tickets[2], web=1).connect()
        clients.append(elsewhere)
        assert await second.closed() == 4001
        assert (await elsewhere.wait_for("position")).data["position"] == 3
        assert (await no_origin.wait_for("position")).data["position"] == 4
        assert elsewhere.open and no_origin.open
    finally:
        await close_all(clients)


def test_api_errors_are_json_and_never_5xx(shared_cluster: Cluster, event: str) -> None:
    c = shared_cluster
    c.put_event(event, status="paused")
    ticket = c.join(event)["ticket"]
    http, admin = c.http, c.admin
    bad_json = b"{not json"
    cases: list[tuple[Callable[[], httpx.Response], int, str | None]] = [
        (lambda: http.post(c.url(f"/api/events/{event}/tickets"), content=bad_json), 400, "invalid_json"),
        (lambda: http.post(c.url(f"/api/events/{event}/tickets"), content=b"[1, 2]"), 400, "invalid_json"),
        (lambda: http.post(c.url("/api/events/NO_SUCH/tickets")), 404, "unknown_event"),
        (lambda: http.post(c.url("/api/redeem"), content=bad_json), 401, "invalid_token"),
        (lambda: http.post(c.url("/api/redeem"), content=b"\xff\xfe"), 401, "invalid_token"),
        (lambda: http.post(c.url("/api/redeem"), json={"token": {"nested": 1}}), 401, "invalid_token"),
        (lambda: http.get(c.url(f"/api/tickets/{ticket}x")), 404, "unknown_ticket"),
        (lambda: http.get(c.url("/api/tickets/%00%ff")), 404, "unknown_ticket"),
        (lambda: http.get(c.url("/api/no/such/path")), 404, None),
        (lambda: http.delete(c.url(f"/api/tickets/{ticket}")), 405, None),
        (lambda: http.get(c.url(f"/api/events/{event}/tickets")), 405, None),
        (lambda: http.get(c.url("/api/redeem")), 405, None),
        (lambda: admin.put(c.url(f"/api/admin/events/{event}"), content=bad_json), 400, "invalid_json"),
        (lambda: admin.put(c.url(f"/api/admin/events/{event}"), json={"max_active": -1}), 422, "invalid_settings"),
        (lambda: admin.post(c.url(f"/api/admin/events/{event}/status"), json={"status": 3}), 422, None),
        (lambda: http.get(c.url("/api/admin/events")), 401, "unauthorized"),
        (lambda: http.post(c.url(f"/api/events/{event}/tickets"), content=b"x" * 70_000), 413, None),
    ]
    for request, status, code in cases:
        r = request()
        what = f"{r.request.method} {r.request.url.path} -> {r.status_code} {r.text[:200]}"
        assert r.status_code < 500, what
        assert r.status_code == status, what
        _, got = error_of(r)  # the contract's JSON error shape, whatever the code
        assert code in (None, got), what
    assert c.ticket(ticket)["state"] == "waiting"  # and the processes still serve


async def test_killing_a_web_process_loses_no_ticket(cluster_factory: Callable[..., Cluster], event: str) -> None:
    c = cluster_factory(webs=2, promoters=1)
    c.put_event(event, status="paused", rate_per_minute=300)
    tickets = [c.join(event)["ticket"] for _ in range(16)]
    clients = await open_sockets(c, tickets, [0] * len(tickets))
    try:
        await asyncio.to_thread(c.set_status, event, "open")
        await until(lambda: served(c, event) >= 2, "the line to move", within=15)
        c.kill_web(0)
        await until(lambda: not any(cl.open for cl in clients), "the sockets to drop", within=15)
        last = {cl.ticket: cl.ranks()[-1] for cl in clients if not cl.admitted}
        assert len(last) >= 8
        await asyncio.to_thread(c.start_web, 0)
        waiting = [cl for cl in clients if cl.ticket in last]
        for i, cl in enumerate(waiting):
            cl.url = cl.url.replace(str(c.ports[0]), str(c.ports[i % 2]))
        await asyncio.gather(*(cl.reconnect() for cl in waiting))
        await until(
            lambda: all(cl.of("position", 1) or cl.of("admitted", 1) for cl in waiting),
            "a position (or admission) on every reconnected socket",
        )
        for cl in waiting:
            if cl.of("position", 1):  # else it was admitted in the meantime
                assert cl.ranks(1)[0] <= last[cl.ticket], f"{cl.ticket} lost its place"
        await until(lambda: all(cl.admitted for cl in clients), "every ticket to be admitted", within=30)
    finally:
        await close_all(clients)
    assert_never_up(clients)
    assert [len(cl.of("admitted")) for cl in clients] == [1] * len(tickets)
    assert c.stats(event)["served_total"] == len(tickets)


def test_the_standby_promoter_takes_over(cluster_factory: Callable[..., Cluster], event: str) -> None:
    c = cluster_factory(webs=1, promoters=2)
    rate = 600
    c.put_event(event, status="paused", rate_per_minute=rate)
    tickets = [c.join(event)["ticket"] for _ in range(60)]
    c.set_status(event, "open")
    poll(lambda: served(c, event) >= 3, "admissions to start")
    leader = c.leader(event)
    assert leader is not None
    standby = next(p for p in c.promoters if p is not leader)
    assert 0 < c.redis.pttl(EventKeys(event).lease) <= 3000
    leader.kill()
    at_kill = served(c, event)
    poll(lambda: served(c, event) >= at_kill + 3, "the standby to admit", within=15)
    assert c.leader(event) is standby
    fresh = c.join(event)["ticket"]
    c.wait_state(fresh, "admitted", within=30)
    found = records(c.redis, event)
    assert all(found[t].stored == "admitted" for t in tickets)
    assert served(c, event) == len(tickets) + 1
    assert max_in_window([r.admitted_ms or 0 for r in found.values()], 1000) <= rate_bound(rate)


async def test_every_process_rides_out_a_redis_restart(cluster_factory: Callable[..., Cluster], event: str) -> None:
    """Redis goes away for a few seconds and comes back from its append-only file: nobody restarts the
    web process or the promoter, joins meanwhile get 503 with Retry-After, and no ticket is lost."""
    c = cluster_factory(webs=1, promoters=1)
    c.put_event(event, status="paused", rate_per_minute=600)
    tickets = [c.join(event)["ticket"] for _ in range(12)]
    clients = await open_sockets(c, tickets, [0] * len(tickets))
    try:
        await until(lambda: all(cl.of("position") for cl in clients), "a first position on every socket")
        c.redis_server.stop()
        refused = await asyncio.to_thread(c.http.post, c.url(f"/api/events/{event}/tickets"))
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable" and int(refused.headers["Retry-After"]) >= 1
        await asyncio.sleep(2)
        c.redis_server.start()
        await asyncio.to_thread(poll, lambda: c.http.get(c.url("/readyz")).status_code == 200, "ready again")
        await asyncio.to_thread(c.set_status, event, "open")
        # the sockets stayed open through the outage, and hear of their admission without reconnecting
        await until(lambda: all(cl.admitted for cl in clients), "admissions after the restart", within=30)
    finally:
        await close_all(clients)
    assert [len(cl.of("admitted")) for cl in clients] == [1] * len(clients)
    assert [c.ticket(t)["state"] for t in tickets] == ["admitted"] * len(tickets), "a ticket was lost"
    assert all(p.running for p in [*c.webs, *c.promoters] if p is not None), "a process died with Redis"
    assert_never_up(clients)
