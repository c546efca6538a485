"""The one-EVALSHA floor of bench/baselines.py must stay a real join: if join.lua's KEYS change and the
baseline does not follow, bench.joins compares ours against an endpoint that only answers errors."""

from __future__ import annotations

from uuid import uuid4

import httpx
from redis.asyncio import Redis

from bench.baselines import minimal_app
from waiting_room.core.proxies import TrustedProxies
from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.events import Events
from waiting_room.store.keys import Keyspace


async def test_the_minimal_endpoint_issues_real_tickets(redis_server: EmbeddedRedis, redis: Redis) -> None:
    event = f"b{uuid4().hex[:10]}"
    await Events(redis, Keyspace()).put(event, {"status": "open"})
    app = minimal_app(redis_server.url, TrustedProxies(()))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.post(f"/api/events/{event}/tickets")
        client.cookies.clear()
        second = await client.post(f"/api/events/{event}/tickets")
    assert (first.status_code, second.status_code) == (201, 201)
    assert [first.json()["position"], second.json()["position"]] == [1, 2]
    assert first.cookies.get("wr_uid")
    assert await redis.zcard(Keyspace().event(event).line) == 2
