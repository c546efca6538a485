"""Bodies a hostile or careless client sends, against a real web process: each gets a 4xx in the
contract's JSON shape with the security headers, never a 5xx, and the process goes on serving."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support.cluster import Cluster, running, write_ed25519_key
from support.waiting import until

from waiting_room.settings import Settings
from waiting_room.store.embedded import EmbeddedRedis, free_port
from waiting_room.web.app import create_app
from waiting_room.web.security import HEADERS

NESTED = b"[" * 20_000
LONE_SURROGATE = b'"\\ud800"'
SECURITY_HEADERS = [name.decode() for name, _ in HEADERS]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("hostile"), webs=1, promoters=0) as made:
        yield made


@pytest.fixture
def event(cluster: Cluster) -> str:
    name = f"bad-{uuid4().hex[:8]}"
    cluster.put_event(name, status="paused")
    return name


def body(template: bytes, value: bytes) -> bytes:
    return template.replace(b"VALUE", value)


# (client: "http" or "admin", method, path, raw body, status, code)
CASES: list[tuple[str, str, str, bytes, int, str]] = [
    ("http", "POST", "/api/events/{e}/tickets", NESTED, 400, "invalid_json"),
    ("http", "POST", "/api/redeem", NESTED, 401, "invalid_token"),
    ("http", "POST", "/api/redeem", body(b'{"token": VALUE}', LONE_SURROGATE), 401, "invalid_token"),
    ("http", "POST", "/api/redeem", body(b'{"token": "a.VALUE.c"}', b"\\udfff"), 401, "invalid_token"),
    ("http", "POST", "/api/events/{e}/tickets", body(b'{"x": VALUE}', LONE_SURROGATE), 400, "invalid_json"),
    ("admin", "PUT", "/api/admin/events/{e}", NESTED, 400, "invalid_json"),
    ("admin", "POST", "/api/admin/events/{e}/status", NESTED, 400, "invalid_json"),
    ("admin", "POST", "/api/admin/events/{e}/notices", NESTED, 400, "invalid_json"),
    ("admin", "POST", "/api/admin/notices", NESTED, 400, "invalid_json"),
    ("admin", "PUT", "/api/admin/events/{e}", body(b'{"title": VALUE}', LONE_SURROGATE), 400, "invalid_json"),
    ("admin", "PUT", "/api/admin/events/{e}", body(b"{VALUE: 1}", LONE_SURROGATE), 400, "invalid_json"),
    ("admin", "POST", "/api/admin/notices", body(b'{"text": VALUE}', LONE_SURROGATE), 400, "invalid_json"),
    ("admin", "PUT", "/api/admin/events/{e}", b'{"opens_at": 1' + b"0" * 400 + b"}", 422, "invalid_settings"),
    ("admin", "PUT", "/api/admin/events/{e}", b'{"opens_at": "1' + b"0" * 400 + b'"}', 422, "invalid_settings"),
    ("admin", "PUT", "/api/admin/events/{e}", b'{"opens_at": -1' + b"0" * 400 + b"}", 422, "invalid_settings"),
    ("admin", "PUT", "/api/admin/events/{e}", b'{"opens_at": 1e999}', 422, "invalid_settings"),
    ("admin", "PUT", "/api/admin/events/{e}", b'{"opens_at": NaN}', 422, "invalid_settings"),
    ("admin", "PUT", "/api/admin/events/{e}", b'{"max_active": 1' + b"0" * 400 + b"}", 422, "invalid_settings"),
    ("admin", "PUT", "/api/admin/events/{e}", b'{"max_active": 1' + b"0" * 5000 + b"}", 400, "invalid_json"),
]


@pytest.mark.parametrize(("who", "method", "path", "raw", "status", "code"), CASES)
def test_malformed_bodies_get_a_clear_4xx_with_the_security_headers(
    cluster: Cluster, event: str, who: str, method: str, path: str, raw: bytes, status: int, code: str
) -> None:
    client = cluster.admin if who == "admin" else cluster.http
    r = client.request(method, cluster.url(path.format(e=event)), content=raw)
    what = f"{method} {path} -> {r.status_code} {r.text[:200]}"
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), what
    assert isinstance(r.json()["error"]["message"], str)
    assert [h for h in SECURITY_HEADERS if h not in r.headers] == [], what
    assert cluster.admin.get(cluster.url(f"/api/admin/events/{event}")).json()["title"] == event


def test_a_refused_join_creates_nothing(cluster: Cluster, event: str) -> None:
    for raw in (NESTED, body(b'{"x": VALUE}', LONE_SURROGATE)):
        assert cluster.http.post(cluster.url(f"/api/events/{event}/tickets"), content=raw).status_code == 400
    assert cluster.stats(event)["tickets_issued"] == 0


def boom(request: Request) -> Response:
    raise RuntimeError("a bug nobody foresaw")


@pytest.mark.parametrize(("path", "json_body"), [("/api/boom", True), ("/boom", False)])
async def test_an_unforeseen_error_is_a_503_with_the_security_headers(
    redis_server: EmbeddedRedis, tmp_path: Path, path: str, json_body: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """No input reaches a bug on purpose any more, so the test adds a route that fails to the real app."""
    write_ed25519_key(tmp_path / "key.pem")
    env = {"WR_REDIS_URL": redis_server.url, "WR_SIGNING_KEY": str(tmp_path / "key.pem"), "WR_ADMIN_TOKEN": "t"}
    app = create_app(Settings.from_env(env))
    app.router.routes.append(Route(path, boom))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, "uvicorn to start")
        async with httpx.AsyncClient(trust_env=False) as client:
            r = await client.get(f"http://127.0.0.1:{port}{path}")
    finally:
        server.should_exit = True
        await serving
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert [h for h in SECURITY_HEADERS if h not in r.headers] == []
    if json_body:
        assert r.json()["error"]["code"] == "unavailable"
    else:
        assert r.headers["content-type"].startswith("text/html")
    assert [rec.getMessage() for rec in caplog.records if rec.exc_info] == [f"unexpected error during GET {path}"]


async def test_the_join_flood_guard_answers_before_the_body_is_read(cluster: Cluster, event: str) -> None:
    """Requests that promise a body and never send it: past the per-address burst, each is refused 429 at
    once, because the limit comes first; had the body been read first, every one would still wait for it."""
    sent = 2_500  # well over the burst (1,000) and what refills while they arrive
    gate = asyncio.Semaphore(200)
    head = (
        f"POST /api/events/{event}/tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 192.0.2.99\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    writers: list[asyncio.StreamWriter] = []

    async def one() -> str:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", cluster.ports[0])
            writers.append(writer)
            writer.write(head)
            await writer.drain()
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
        except TimeoutError:
            return "waiting for the body"
        return line.decode().split(" ")[1] if line else "closed"

    try:
        answers = Counter(await asyncio.gather(*(one() for _ in range(sent))))
    finally:
        for writer in writers:
            writer.close()
    assert answers["429"] >= 1, answers
    assert set(answers) <= {"429", "waiting for the body"}, answers


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/admin/events", "GET, HEAD"),
        ("DELETE", "/api/admin/events/{e}", "GET, HEAD, PUT"),
        ("PATCH", "/api/admin/events/{e}", "GET, HEAD, PUT"),
        ("GET", "/api/admin/notices", "POST"),
        ("DELETE", "/api/tickets/x", "GET, HEAD"),
    ],
)
def test_a_wrong_method_on_a_call_is_405_naming_the_right_ones(
    cluster: Cluster, event: str, method: str, path: str, allow: str
) -> None:
    r = cluster.admin.request(method, cluster.url(path.format(e=event)))
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed"), r.text
    assert sorted(m.strip() for m in r.headers["allow"].split(",")) == allow.split(", ")
    assert cluster.http.request(method, cluster.url(path.format(e=event))).status_code in (401, 405)
