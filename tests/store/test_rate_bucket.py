"""The rate's token bucket in Redis, which promote.lua and join.lua's fast lane both spend, on a real
redis-server. Time is Redis TIME, so elapsed time is made by writing the bucket's last fill into the past."""

from __future__ import annotations

import json
import math

import pytest
from redis.asyncio import Redis

from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys, Keyspace
from waiting_room.store.scripts import AdmittedAtOnce, AlreadyJoined, Joined, Scripts

from .test_lua_scripts import fill_bucket, join, promote

pytestmark = pytest.mark.usefixtures("deadline")

TICK_MS = 100


async def bucket(redis: Redis, k: EventKeys) -> dict[str, float]:
    raw = await redis.hgetall(k.bucket)
    return {name: float(v) for name, v in raw.items()}


async def backdate(redis: Redis, k: EventKeys, tokens: float, ms_ago: int) -> None:
    seconds, micros = await redis.time()
    now = seconds * 1000 + micros // 1000
    await redis.hset(k.bucket, mapping={"tokens": tokens, "at": now - ms_ago})


@pytest.mark.parametrize(("rate", "per_tick"), [(600, 1), (1200, 2), (100, 1), (6000, 10), (7, 1)])
async def test_after_a_long_stall_one_tick_admits_at_most_its_share_rounded_up(
    keyspace: Keyspace,
    redis: Redis,
    scripts: Scripts,
    events: Events,
    event_id: str,
    rate: int,
    per_tick: int,
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused", "rate_per_minute": rate})
    for i in range(30):
        await join(scripts, k, f"u{i}")
    await events.put(event_id, {"status": "open"})
    await backdate(redis, k, 0, 3600_000)  # an hour without a tick: the bucket is full, not huge
    reply = await promote(scripts, k, "me", tick_ms=TICK_MS)
    assert reply.admitted == per_tick == max(1, math.ceil(rate / 60 * TICK_MS / 1000))
    share = rate / 60 * TICK_MS / 1000
    assert (await bucket(redis, k))["tokens"] == pytest.approx(share + 1 - per_tick, abs=1e-3)


async def test_not_admitting_empties_the_bucket(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused"})
    await backdate(redis, k, 5, 1000)
    await promote(scripts, k, "me", tick_ms=TICK_MS)
    assert (await bucket(redis, k))["tokens"] == 0


async def test_a_fenced_promoter_leaves_the_bucket_alone(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused"})
    await redis.set(k.lease, "someone-else", px=3000)
    await backdate(redis, k, 3, 1000)
    assert not (await promote(scripts, k, "me", tick_ms=TICK_MS)).leading
    assert (await bucket(redis, k))["tokens"] == 3


async def test_the_fast_lane_spends_the_promoters_bucket_and_the_promoter_counts_it(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"queue_only_when_full": True, "rate_per_minute": 60})
    await fill_bucket(redis, k, 1)
    assert isinstance(await join(scripts, k, "u1"), AdmittedAtOnce)
    second = await join(scripts, k, "u2")  # the bucket is spent: a line forms
    assert isinstance(second, Joined) and second.rank == 0
    assert (await bucket(redis, k))["fast"] == 1
    reply = await promote(scripts, k, "me", tick_ms=TICK_MS)
    assert reply.admitted == 0, "the promoter admitted on a budget the fast lane had spent"
    assert reply.fast == 1  # the fast lane's admissions since the last tick, for the observed rate
    assert (await bucket(redis, k))["fast"] == 0


async def test_a_new_event_admits_at_once_before_any_tick(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"queue_only_when_full": True, "rate_per_minute": 60})
    reply = await join(scripts, k, "u1")
    assert isinstance(reply, AdmittedAtOnce)
    ticket, a = reply.ticket, reply.admission
    assert reply.served_total == 1 and a.expires_ms - a.admitted_ms == 300_000
    assert reply.target_url == f"/order/{event_id}"
    record = json.loads(await redis.hget(k.tickets, ticket) or "{}")
    assert (record["s"], record["a"], record["x"], record["jti"]) == ("admitted", a.admitted_ms, a.expires_ms, a.jti)
    assert await redis.zscore(k.pending, ticket) == a.expires_ms
    assert await redis.zcard(k.line) == 0
    assert await redis.hget(k.uids, "u1") == ticket
    assert await join(scripts, k, "u1") == AlreadyJoined(ticket)


async def test_the_fast_lane_is_closed_while_anyone_waits_or_is_not_admitted(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"queue_only_when_full": True, "status": "paused"})
    assert isinstance(await join(scripts, k, "paused"), Joined)  # paused: nobody is admitted
    await events.put(event_id, {"status": "open"})
    await fill_bucket(redis, k, 50)
    assert isinstance(await join(scripts, k, "behind"), Joined), "admitted past someone waiting"
    await redis.delete(k.line)
    assert isinstance(await join(scripts, k, "now"), AdmittedAtOnce)


async def test_capacity_counts_live_admissions_only(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"queue_only_when_full": True, "max_active": 2, "rate_per_minute": 1_000_000})
    k = k
    await redis.zadd(k.pending, {"gone-a": 1, "live-b": 2**50})  # one token expired (not swept yet), one live
    assert isinstance(await join(scripts, k, "u1"), AdmittedAtOnce)
    assert isinstance(await join(scripts, k, "u2"), Joined), "capacity overshot"
