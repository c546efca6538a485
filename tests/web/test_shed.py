"""Overload sheds: past the bound of requests in flight, joins and polls get 429 + Retry-After at once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from support.cluster import Cluster
from support.waiting import until

from waiting_room.core.proxies import TrustedProxies
from waiting_room.store.keys import EventKeys
from waiting_room.web.errors import EXCEPTION_HANDLERS
from waiting_room.web.front import Front
from waiting_room.web.shed import MAX_IN_FLIGHT, Shed


class Gate:
    """An app whose answers wait until released: requests stay in flight as long as the test wants."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.open.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_past_the_bound_calls_are_refused_and_others_pass() -> None:
    gate = Gate()
    app = Front(gate, TrustedProxies(()), Shed(max_in_flight=2), EXCEPTION_HANDLERS)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with http:
        held = [asyncio.create_task(http.post("/api/events/e/tickets")) for _ in range(2)]
        await until(lambda: gate.entered == 2, "two requests in flight")
        refused = await asyncio.gather(http.post("/api/events/e/tickets"), http.get("/api/tickets/e.x"))
        assert [r.status_code for r in refused] == [429, 429]
        assert all(r.headers["retry-after"] == "1" for r in refused)
        assert refused[0].json()["error"]["code"] == "rate_limited"
        assert all(r.headers["x-frame-options"] == "DENY" for r in refused)  # refusals are answers like any other
        exempt = [asyncio.create_task(http.get(p)) for p in ("/api/admin/events", "/healthz", "/e/e")]
        await until(lambda: gate.entered == 5, "operators, probes and pages to pass: they are never refused")
        gate.open.set()
        answers = await asyncio.gather(*held, *exempt)
        assert [r.status_code for r in answers] == [200] * 5
        assert (await http.post("/api/events/e/tickets")).status_code == 200  # room again


async def post_join(port: int, event: str, forwarded: str) -> tuple[int, dict[str, str]]:
    """One join on its own connection (a raw HTTP/1.1 client: hundreds at once, quickly); status and headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST /api/events/{event}/tickets HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {forwarded}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        await reader.read()
    finally:
        writer.close()
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
    return int(head[0].split()[1]), headers


@pytest.mark.slow
@pytest.mark.usefixtures("deadline")
async def test_one_web_process_past_capacity_answers_2xx_or_429_only(
    cluster_factory: Callable[..., Cluster], event_id: str
) -> None:
    """Redis holds every join for a while (CLIENT PAUSE WRITE, shorter than the client's socket timeout):
    the joins pile up in flight, and past the bound the rest must be refused, not queued."""
    c = cluster_factory(webs=1, promoters=0)
    c.put_event(event_id, status="paused")
    requests = MAX_IN_FLIGHT + 200
    c.redis.execute_command("CLIENT", "PAUSE", 4000, "WRITE")
    answers = await asyncio.gather(
        *(post_join(c.ports[0], event_id, f"10.9.{i // 256}.{i % 256}") for i in range(requests))
    )
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 429}, statuses
    assert statuses[429] > 0 and statuses[201] > 0, statuses
    refused = [headers for status, headers in answers if status == 429]
    assert all(h.get("retry-after", "").isdigit() for h in refused)
    assert all(h.get("x-content-type-options") == "nosniff" for h in refused)  # security headers on refusals too
    issued = c.redis.hget(EventKeys(event_id).stats, "issued")
    assert int(issued or 0) == statuses[201] == c.redis.zcard(EventKeys(event_id).line), json.dumps(statuses)
