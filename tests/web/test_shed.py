"""Overload sheds: past the bound of requests in flight, joins and polls get 429 + Retry-After at once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from support.cluster import Cluster
from support.waiting import until

from waiting_room.store.keys import EventKeys
from waiting_room.web.shed import Shed


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
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=Shed(gate, max_in_flight=2)), base_url="http://t")
    async with http:
        held = [asyncio.create_task(http.post("/api/events/e/tickets")) for _ in range(2)]
        await until(lambda: gate.entered == 2, "two requests in flight")
        refused = await asyncio.gather(http.post("/api/events/e/tickets"), http.get("/api/tickets/e.x"))
        assert [r.status_code for r in refused] == [429, 429]
        assert all(r.headers["retry-after"] == "1" for r in refused)
        assert refused[0].json()["error"]["code"] == "rate_limited"
        exempt = [asyncio.create_task(http.get(p)) for p in ("/api/admin/events", "/healthz", "/e/e")]
        await until(lambda: gate.entered == 5, "operators, probes and pages to pass: they are never refused")
        gate.open.set()
        answers = await asyncio.gather(*held, *exempt)
        assert [r.status_code for r in answers] == [200] * 5
        assert (await http.post("/api/events/e/tickets")).status_code == 200  # room again


@pytest.mark.slow
@pytest.mark.usefixtures("deadline")
async def test_one_web_process_past_capacity_answers_2xx_or_429_only(
    cluster_factory: Callable[..., Cluster], event_id: str
) -> None:
    c = cluster_factory(webs=1, promoters=0)
    c.put_event(event_id, status="paused")
    connections, requests = 400, 1200
    statuses: Counter[int] = Counter()
    malformed = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # every join a new visitor
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False, cookies=no_cookies) as http:
        sem = asyncio.Semaphore(connections)

        async def join(i: int) -> None:
            nonlocal malformed
            async with sem:
                forwarded = f"10.9.{i // 256}.{i % 256}"  # each its own visitor, through the trusted proxy
                r = await http.post(c.url(f"/api/events/{event_id}/tickets"), headers={"X-Forwarded-For": forwarded})
            statuses[r.status_code] += 1
            if r.status_code == 429 and not r.headers.get("retry-after", "").isdigit():
                malformed += 1
            if r.headers.get("x-content-type-options") != "nosniff":  # refusals carry the security headers too
                malformed += 1

        await asyncio.gather(*(join(i) for i in range(requests)))
    assert set(statuses) <= {201, 429}, statuses
    assert statuses[429] > 0 and statuses[201] > 0, statuses
    assert malformed == 0
    issued = c.redis.hget(EventKeys(event_id).stats, "issued")
    assert int(issued or 0) == statuses[201] == c.redis.zcard(EventKeys(event_id).line), json.dumps(statuses)
