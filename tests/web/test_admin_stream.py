"""WebSocket /ws/admin against a real web process, promoter and redis-server.

The socket says nothing until the first message carries the admin token;
then it pushes every event's settings and stats each second.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
from support.cluster import Cluster, running
from support.waiting import until
from support.ws import WsClient, close_all

from waiting_room.core.states import CloseCode
from waiting_room.web.admin_stream import AUTH_TIMEOUT_SECONDS

STATS_FIELDS = {
    "waiting",
    "admitted_pending",
    "active",
    "served_total",
    "tickets_issued",
    "connections",
    "rate_per_minute",
    "observed_rate_per_minute",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("admin-stream"), webs=1, promoters=1) as made:
        yield made


@pytest.fixture
def event() -> str:
    return f"adm-{uuid4().hex[:8]}"


def admin_ws(cluster: Cluster, origin: str | None = "") -> WsClient:
    url = cluster.url("/ws/admin").replace("http://", "ws://")
    return WsClient(url, "admin", cluster.public_url if origin == "" else origin)


def event_in(message: dict[str, Any], event: str) -> dict[str, Any] | None:
    return next((e for e in message["events"] if e["id"] == event), None)


def latest(client: WsClient, event: str) -> dict[str, Any] | None:
    pushes = client.of("stats")
    return event_in(pushes[-1].data, event) if pushes else None


async def pushed(client: WsClient, event: str, what: str, check: Callable[[dict[str, Any]], bool]) -> None:
    """Until a push shows `event` as `check` wants (the pushes keep coming, so this is liveness only)."""

    def seen() -> bool:
        found = latest(client, event)
        assert client.open, f"the admin socket closed ({client.close_code})"
        return found is not None and check(found)

    await until(seen, f"a push showing {event} {what}: {latest(client, event)}")


async def test_the_token_opens_a_push_of_every_event_each_second(cluster: Cluster, event: str) -> None:
    cluster.put_event(event, title="Stream", rate_per_minute=600, max_active=3)
    client = await admin_ws(cluster).connect()
    try:
        await client.send(json.dumps({"token": cluster.admin_token}))
        await client.wait_for("stats")
        for _ in range(5):
            cluster.join(event)
        await pushed(
            client,
            event,
            "with 3 admitted and 2 waiting (capacity 3)",
            lambda e: (e["stats"]["served_total"], e["stats"]["waiting"]) == (3, 2),
        )
        stats = [m.data for m in client.of("stats")]
        ats = [m["at"] for m in stats]
        assert ats == sorted(ats) and len(set(ats)) == len(ats)
        shown = latest(client, event)
        assert shown is not None
        assert shown["settings"]["title"] == "Stream"
        assert shown["settings"]["max_active"] == 3
        assert set(shown["stats"]) >= STATS_FIELDS
        assert shown["stats"]["tickets_issued"] == 5
        assert shown["stats"]["admitted_pending"] == 3
    finally:
        await close_all([client])


async def test_a_settings_change_shows_in_the_next_push(cluster: Cluster, event: str) -> None:
    cluster.put_event(event)
    client = await admin_ws(cluster).connect()
    try:
        await client.send(json.dumps({"token": cluster.admin_token}))
        await client.wait_for("stats")
        cluster.put_event(event, rate_per_minute=42)
        cluster.set_status(event, "paused")
        await pushed(
            client,
            event,
            "paused at 42/min",
            lambda e: (e["settings"]["rate_per_minute"], e["settings"]["status"]) == (42, "paused"),
        )
        assert latest(client, event)["stats"]["rate_per_minute"] == 42  # type: ignore[index]
    finally:
        await close_all([client])


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"token": "wrong"}),
        json.dumps({"token": 12345}),
        json.dumps({"tok": "x"}),
        "not json",
        "[]",
    ],
)
async def test_anything_but_the_token_first_is_4401_with_no_data(cluster: Cluster, first: str) -> None:
    client = await admin_ws(cluster).connect()
    await client.send(first)
    assert await client.closed() == CloseCode.UNAUTHORIZED
    assert client.received == []


async def test_a_right_token_second_is_too_late(cluster: Cluster) -> None:
    client = await admin_ws(cluster).connect()
    await client.send(json.dumps({"hello": 1}))
    await client.send(json.dumps({"token": cluster.admin_token}))
    assert await client.closed() == CloseCode.UNAUTHORIZED
    assert client.received == []


async def test_saying_nothing_is_closed_after_the_auth_timeout(cluster: Cluster) -> None:
    client = await admin_ws(cluster).connect()
    assert await client.closed(within=AUTH_TIMEOUT_SECONDS + 10) == CloseCode.UNAUTHORIZED
    assert client.received == []


async def test_a_foreign_origin_is_4403(cluster: Cluster) -> None:
    client = await admin_ws(cluster, origin="https://evil.example").connect()
    await client.send(json.dumps({"token": cluster.admin_token}))
    assert await client.closed() == 4403
    assert client.received == []


async def test_a_client_without_origin_is_served(cluster: Cluster) -> None:
    """Scripts and apps send no Origin; the token is what guards the data."""
    client = await admin_ws(cluster, origin=None).connect()
    try:
        await client.send(json.dumps({"token": cluster.admin_token}))
        assert (await client.wait_for("stats")).data["type"] == "stats"
    finally:
        await close_all([client])


async def test_a_redis_outage_is_said_and_the_push_resumes(cluster_factory: Callable[..., Cluster]) -> None:
    own = cluster_factory(webs=1, promoters=0)
    own.put_event("outage")
    client = await admin_ws(own).connect()
    try:
        await client.send(json.dumps({"token": own.admin_token}))
        await client.wait_for("stats")
        own.redis_server.kill()
        unavailable = await client.wait_for("unavailable")
        assert "Redis" in unavailable.data["message"]
        own.redis_server.start()
        before = len(client.of("stats"))
        await until(lambda: len(client.of("stats")) > before, "the pushes to resume after Redis is back")
        assert client.open
    finally:
        await close_all([client])
