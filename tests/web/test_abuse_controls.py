"""Per-client controls at the front door, over real processes: join limits and a waiting cap keyed on
the real client address (X-Forwarded-For from a trusted proxy only), and proof of work at join; each
changed live through the admin API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from support.cluster import Cluster, running

from waiting_room.core.proof import solve

pytestmark = pytest.mark.usefixtures("deadline")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("abuse"), webs=1, promoters=1) as made:
        yield made


@pytest.fixture
def event(cluster: Cluster) -> str:
    name = f"ab-{uuid4().hex[:8]}"
    cluster.put_event(name, status="paused")
    return name


def join(c: Cluster, event: str, client: str | None = None, body: Any = None) -> httpx.Response:
    """A new visitor (no cookies) joins, from `client` as a proxy on 127.0.0.1 would name it."""
    headers = {"X-Forwarded-For": client} if client else {}
    return c.http.post(c.url(f"/api/events/{event}/tickets"), headers=headers, json=body if body is not None else {})


def join_keys(c: Cluster, event: str) -> list[str]:
    """The event's keys a join writes (the promoter's lease, bucket and stats aside)."""
    written = [key.split(":", 2)[2] for key in c.redis.scan_iter(f"wr:{{{event}}}:*")]
    return [k for k in written if k.startswith(("seq", "line", "tickets", "uids", "seen", "client-", "proof"))]


def codes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    return Counter((r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None) for r in responses)


def test_joins_per_minute_count_per_real_client_and_change_live(cluster: Cluster, event: str) -> None:
    c = cluster
    c.put_event(event, client_joins_per_minute=5)
    first = [join(c, event, "203.0.113.7") for _ in range(8)]
    assert codes(first) == {(201, None): 5, (429, "rate_limited"): 3}
    assert all(1 <= int(r.headers["Retry-After"]) <= 12 for r in first[5:])
    assert join(c, event, "203.0.113.8").status_code == 201  # another client behind the same proxy
    assert join(c, event).status_code == 201  # the proxy's own address is a client of its own
    assert c.stats(event)["tickets_issued"] == 7

    c.put_event(event, client_joins_per_minute=0)  # off, without a restart
    assert join(c, event, "203.0.113.7").status_code == 201


def test_the_waiting_cap_per_client_is_off_by_default_and_counts_only_waiting_tickets(
    cluster: Cluster, event: str
) -> None:
    c = cluster
    assert codes([join(c, event, "198.51.100.1") for _ in range(6)]) == {(201, None): 6}  # off by default
    c.put_event(event, client_max_waiting=2)
    mine = [join(c, event, "198.51.100.2") for _ in range(3)]
    assert codes(mine) == {(201, None): 2, (429, "too_many_tickets"): 1}
    assert int(mine[2].headers["Retry-After"]) >= 1
    c.put_event(event, status="open", rate_per_minute=6000)  # everybody is let in: nobody waits any more
    c.wait_state(mine[1].json()["ticket"], "admitted")
    assert codes([join(c, event, "198.51.100.2") for _ in range(3)]) == {(201, None): 2, (429, "too_many_tickets"): 1}


def test_proof_of_work_is_asked_for_checked_and_spent_once(cluster: Cluster, event: str) -> None:
    c = cluster
    c.put_event(event, pow_difficulty=10)
    refused = join(c, event, "192.0.2.1")
    assert refused.status_code == 428, refused.text
    error = refused.json()["error"]
    assert error["code"] == "proof_required" and "wr_uid" not in refused.cookies
    challenge = error["challenge"]
    assert challenge["difficulty"] == 10 and challenge["algorithm"] == "sha256-leading-zero-bits"
    assert join_keys(c, event) == [], "a refused join wrote to Redis"

    proof = {"challenge": challenge["challenge"], "nonce": solve(challenge["challenge"], 10)}
    assert join(c, event, "192.0.2.2", {"proof": proof}).status_code == 428  # bound to the client it was for
    wrong = {**proof, "nonce": "not-the-answer"}
    bad_proofs: list[Any] = [wrong, None, 7, "x", [], {**proof, "nonce": "é"}]
    for bad in bad_proofs:
        r = join(c, event, "192.0.2.1", {"proof": bad})
        assert (r.status_code, r.json()["error"]["code"]) == (428, "proof_required"), (bad, r.text)
    assert c.stats(event)["tickets_issued"] == 0

    joined = join(c, event, "192.0.2.1", {"proof": proof})
    assert joined.status_code == 201, joined.text
    assert any(k.startswith("proof:") for k in join_keys(c, event))  # spent
    replayed = join(c, event, "192.0.2.1", {"proof": proof})
    assert (replayed.status_code, replayed.json()["error"]["code"]) == (428, "proof_required")
    assert "already" in replayed.json()["error"]["message"]
    assert c.stats(event)["tickets_issued"] == 1
    c.put_event(event, pow_difficulty=0)  # off, live
    assert join(c, event, "192.0.2.1").status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_joins_per_minute", -1),
        ("client_joins_per_minute", "many"),
        ("client_max_waiting", 1001),
        ("client_max_waiting", 1.5),
        ("pow_difficulty", 25),
        ("pow_difficulty", True),
    ],
)
def test_bad_control_values_are_422_naming_the_field(cluster: Cluster, event: str, field: str, value: Any) -> None:
    r = cluster.admin.put(cluster.url(f"/api/admin/events/{event}"), json={field: value})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_settings", r.text
    assert r.json()["error"]["field"] == field


def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Behind WR_TRUSTED_PROXIES=10.9.9.9, this test (127.0.0.1) is a client, not a proxy: its
    X-Forwarded-For names nobody, and every join counts against 127.0.0.1."""
    c = Cluster(tmp_path_factory.mktemp("untrusted"), webs=1, promoters=0)
    c.env["WR_TRUSTED_PROXIES"] = "10.9.9.9"
    try:
        c.start()
        c.put_event("untrusted", status="paused", client_joins_per_minute=3)
        answers = [join(c, "untrusted", f"203.0.113.{i}") for i in range(5)]
        assert codes(answers) == {(201, None): 3, (429, "rate_limited"): 2}
    finally:
        c.close()
