"""The admin API against a real web process and promoter: auth on every call, validation naming the
field, notices, and what a status change does to those waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from support.cluster import Cluster, running
from support.ws import WsClient, close_all

ADMIN_CALLS = [
    ("GET", "/api/admin/events", None),
    ("GET", "/api/admin/events/{e}", None),
    ("PUT", "/api/admin/events/{e}", {}),
    ("POST", "/api/admin/events/{e}/status", {"status": "paused"}),
    ("POST", "/api/admin/events/{e}/notices", {"text": "hi", "level": "info"}),
    ("POST", "/api/admin/notices", {"text": "hi"}),
    ("GET", "/api/admin/events/{e}/stats", None),
    ("DELETE", "/api/admin/events/{e}", None),
    ("GET", "/api/admin/no-such-thing", None),
]

BAD_SETTINGS = [
    ("title", ""),
    ("title", "x" * 201),
    ("rate_per_minute", 0),
    ("rate_per_minute", "fast"),
    ("rate_per_minute", True),
    ("max_active", -1),
    ("token_ttl_seconds", 0),
    ("session_ttl_seconds", 1.5),
    ("abandon_after_seconds", 0),
    ("opens_at", "tomorrow"),
    ("status", "maybe"),
    ("target_url", "javascript:alert(1)"),
    ("target_url", "//evil.example"),
    ("colour", "red"),
    ("queue_only_when_full", "yes"),
    ("queue_only_when_full", 1),
    ("description", "x" * 1001),
    ("description", 42),
    ("description", "bell\x07"),
    ("logo_url", "http://shop.example/logo.png"),
    ("logo_url", "javascript:alert(1)"),
    ("logo_url", "//evil.example/logo.png"),
    ("logo_url", "logo.png"),
    ("logo_url", "data:image/png;base64,AAAA"),
    ("accent_color", "red"),
    ("accent_color", "#12345"),
    ("accent_color", "#12345g"),
    ("accent_color", "123456"),
    ("accent_color", 0x123456),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("admin-api"), webs=1, promoters=1) as made:
        yield made


@pytest.fixture
def event(cluster: Cluster) -> str:
    name = f"adm-{uuid4().hex[:8]}"
    cluster.put_event(name, status="paused")
    return name


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), response.text
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic {token}", "Bearer"])
def test_every_admin_call_needs_the_token(
    cluster: Cluster, event: str, method: str, path: str, body: dict[str, Any] | None, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.format(token=cluster.admin_token)}
    response = cluster.http.request(method, cluster.url(path.format(e=event)), json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert _error(response)["code"] == "unauthorized"
    assert (
        cluster.stats(event)["waiting"] == 0
        and cluster.admin.get(cluster.url(f"/api/admin/events/{event}")).json()["status"] == "paused"
    ), "a refused call changed something"


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
def test_bad_settings_are_422_naming_the_field(cluster: Cluster, event: str, field: str, value: Any) -> None:
    before = cluster.admin.get(cluster.url(f"/api/admin/events/{event}")).json()
    response = cluster.admin.put(cluster.url(f"/api/admin/events/{event}"), json={field: value})
    assert response.status_code == 422, response.text
    error = _error(response)
    assert error["code"] == "invalid_settings"
    assert error.get("field") == field and field in error["message"]
    assert cluster.admin.get(cluster.url(f"/api/admin/events/{event}")).json() == before, "a refused PUT wrote"


def test_put_is_partial_and_answers_the_full_settings(cluster: Cluster, event: str) -> None:
    settings = cluster.put_event(event, rate_per_minute=90, opens_at=None)
    assert settings["rate_per_minute"] == 90 and settings["status"] == "paused"
    assert set(settings) >= {
        "title",
        "rate_per_minute",
        "max_active",
        "token_ttl_seconds",
        "session_ttl_seconds",
        "abandon_after_seconds",
        "opens_at",
        "status",
        "target_url",
        "queue_only_when_full",
        "description",
        "logo_url",
        "accent_color",
    }
    assert settings["target_url"] == f"/order/{event}"
    assert (settings["queue_only_when_full"], settings["description"]) == (False, "")
    assert (settings["logo_url"], settings["accent_color"]) == (None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"text": ""}, "text"), ({"text": "x" * 501}, "text"), ({"text": "hi", "level": "shout"}, "level"), ({}, "text")],
)
def test_bad_notices_are_422(cluster: Cluster, event: str, body: dict[str, Any], field: str) -> None:
    response = cluster.admin.post(cluster.url(f"/api/admin/events/{event}/notices"), json=body)
    assert response.status_code == 422 and _error(response).get("field") == field, response.text


def test_status_changes_reach_every_socket_and_sold_out_refuses_joins(cluster: Cluster, event: str) -> None:
    tickets = [cluster.join(event)["ticket"] for _ in range(3)]

    async def scenario() -> None:
        clients = [await cluster.ws(t).connect() for t in tickets]
        try:
            for client in clients:
                await client.wait_for("position")
            cluster.set_status(event, "sold_out")
            for client in clients:
                message = await client.wait_for("state", within=5)
                assert message.data["state"] == "sold_out" and message.data["message"]
            joined = cluster.http.post(cluster.url(f"/api/events/{event}/tickets"))
            assert joined.status_code == 409 and _error(joined)["code"] == "event_closed"
            assert cluster.ticket(tickets[0])["state"] == "waiting", "sold out keeps those already waiting"
            cluster.set_status(event, "closed")
            for client in clients:
                assert (await client.wait_for("state", within=5)).data["state"] in ("sold_out", "closed")
                assert await client.closed(within=10) == 4409
        finally:
            await close_all(clients)
        assert {cluster.ticket(t)["state"] for t in tickets} == {"removed"}

    asyncio.run(scenario())


def test_a_notice_reaches_sockets_and_later_arrivals(cluster: Cluster, event: str) -> None:
    first, later = (cluster.join(event)["ticket"] for _ in range(2))

    async def scenario() -> None:
        client = await cluster.ws(first).connect()
        try:
            await client.wait_for("position")
            posted = cluster.admin.post(
                cluster.url(f"/api/admin/events/{event}/notices"),
                json={"text": "<b>restocking</b>", "level": "warning"},
            )
            assert posted.status_code == 201
            assert set(posted.json()) == {"id", "text", "level", "at"}
            notice = (await client.wait_for("notice", within=5)).data
            assert (notice["text"], notice["level"]) == ("<b>restocking</b>", "warning")
            assert abs(notice["at"] - time.time()) < 60
            newcomer = await cluster.ws(later).connect()
            try:
                assert (await newcomer.wait_for("notice", within=5)).data["id"] == posted.json()["id"]
            finally:
                await newcomer.close()
        finally:
            await client.close()

    asyncio.run(scenario())


def test_stats_count_sockets_across_the_process(cluster: Cluster, event: str) -> None:
    tickets = [cluster.join(event)["ticket"] for _ in range(4)]

    async def scenario() -> None:
        clients: list[WsClient] = [await cluster.ws(t).connect() for t in tickets]
        try:
            deadline = time.monotonic() + 10
            while cluster.stats(event)["connections"] != 4:
                assert time.monotonic() < deadline, cluster.stats(event)
                await asyncio.sleep(0.2)
        finally:
            await close_all(clients)

    asyncio.run(scenario())
    stats = cluster.stats(event)
    assert (stats["waiting"], stats["tickets_issued"], stats["served_total"]) == (4, 4, 0)


def test_opens_at_cannot_jump_an_open_line(cluster: Cluster, event: str) -> None:
    """Early joins are ordered ahead of everyone after the opening: with people already waiting in an
    open line, a future opens_at would put newcomers ahead of them."""
    cluster.join(event)
    response = cluster.admin.put(cluster.url(f"/api/admin/events/{event}"), json={"opens_at": time.time() + 600})
    assert response.status_code == 422 and _error(response).get("field") == "opens_at", response.text
    fresh = f"{event}-new"
    assert cluster.put_event(fresh, opens_at=time.time() + 600)["opens_at"] is not None  # an empty line may
