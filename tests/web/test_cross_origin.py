"""Joins a browser sends from another site are refused and create nothing; clients that send no
Origin or Sec-Fetch-Site (curl, apps, servers) and the waiting room's own pages are served."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from support.cluster import Cluster, running


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("origins"), webs=1, promoters=0) as made:
        yield made


@pytest.fixture
def event(cluster: Cluster) -> str:
    name = f"xo-{uuid4().hex[:8]}"
    cluster.put_event(name, status="paused")
    return name


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # sandboxed frames, some redirects
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "{own}"},
        {"Origin": "{own}.evil.example"},
        {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
    ],
)
def test_a_join_from_another_site_is_403_and_creates_nothing(
    cluster: Cluster, event: str, headers: dict[str, str]
) -> None:
    sent = {k: v.format(own=cluster.public_url) for k, v in headers.items()}
    r = cluster.http.post(cluster.url(f"/api/events/{event}/tickets"), headers=sent, json={})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "cross_origin"), r.text
    assert "wr_uid" not in r.cookies
    assert cluster.stats(event)["tickets_issued"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, a mobile app, a server
        {"Origin": "{own}"},
        {"Origin": "{own}/"},
        {"Origin": "{own}", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
    ],
)
def test_own_pages_and_clients_without_those_headers_still_join(
    cluster: Cluster, event: str, headers: dict[str, str]
) -> None:
    sent = {k: v.format(own=cluster.public_url) for k, v in headers.items()}
    r = cluster.http.post(cluster.url(f"/api/events/{event}/tickets"), headers=sent, json={})
    assert r.status_code == 201, r.text
    assert cluster.stats(event)["tickets_issued"] == 1
