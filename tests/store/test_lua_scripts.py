"""The Lua scripts called directly on a real redis-server: the contracts of their KEYS/ARGV headers."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest
from redis.asyncio import Redis
from support.promoting import BusRecorder

from waiting_room.core.tickets import new_ticket
from waiting_room.store import keys
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys
from waiting_room.store.scripts import Scripts

pytestmark = pytest.mark.usefixtures("deadline")


async def join(
    scripts: Scripts,
    event: str,
    uid: str,
    replace: str = "",
    client: str = "10.0.0.1",
    proof: tuple[str, int, int] = ("-", 0, 0),
) -> list[Any]:
    k = EventKeys(event)
    salt, proved, until_ms = proof
    per_client = [k.client_joins(client), k.client_waiting(client), k.proof(salt)]
    reply: list[Any] = await scripts.join(
        [k.settings, k.seq, k.line, k.tickets, k.uids, k.stats, k.seen, *per_client],
        [new_ticket(event), uid, secrets.randbelow(1 << 40), replace, secrets.token_urlsafe(16), proved, until_ms],
    )
    return reply


async def promote(
    scripts: Scripts, event: str, owner: str, budget: int, *, last: str = "", batch: int = 500, keep_ms: int = 3600_000
) -> list[Any]:
    k = EventKeys(event)
    reply: list[Any] = await scripts.promote(
        [k.settings, k.line, k.tickets, k.pending, k.active, k.stats, k.lease, k.seen, k.done, k.uids],
        [owner, 2000, budget, "", keys.BUS, last, batch, keep_ms],
    )
    return reply


async def test_join_replies(scripts: Scripts, events: Events, event_id: str) -> None:
    assert await join(scripts, event_id, "u1") == ["unknown_event"]
    await events.put(event_id, {"status": "paused"})
    first = await join(scripts, event_id, "u1")
    assert first[0] == "new"
    assert first[2:7] == [0, 1, 0, 0, "0"]
    assert first[7] == "paused"
    assert await join(scripts, event_id, "u1") == ["existing", first[1]]
    # `replace` only takes effect for the uid's own (finished) ticket
    assert await join(scripts, event_id, "u1", replace=new_ticket(event_id)) == ["existing", first[1]]
    replaced = await join(scripts, event_id, "u1", replace=first[1])
    assert replaced[0] == "new" and replaced[1] != first[1]
    await events.put(event_id, {"status": "sold_out"})
    assert await join(scripts, event_id, "u2") == ["event_closed"]


async def test_promote_is_fenced_by_the_lease(redis: Redis, scripts: Scripts, events: Events, event_id: str) -> None:
    await events.put(event_id, {"status": "open"})
    ticket = (await join(scripts, event_id, "u1"))[1]
    k = EventKeys(event_id)
    await redis.set(k.lease, "someone-else", px=3000)
    async with BusRecorder(redis) as bus:
        assert await promote(scripts, event_id, "me", budget=10) == [0]
    assert await redis.zrank(k.line, ticket) == 0
    assert await redis.hget(k.stats, "served_total") is None
    assert await redis.get(k.lease) == "someone-else"
    assert bus.advances(event_id) == []
    await redis.delete(k.lease)
    reply = await promote(scripts, event_id, "me", budget=10)
    assert reply[:4] == [1, 1, 1, 0]
    assert await redis.get(k.lease) == "me"
    assert 0 < await redis.pttl(k.lease) <= 2000


async def test_promote_publishes_only_changes(redis: Redis, scripts: Scripts, events: Events, event_id: str) -> None:
    await events.put(event_id, {"status": "open"})
    tickets = [(await join(scripts, event_id, f"u{i}"))[1] for i in range(3)]
    async with BusRecorder(redis) as bus:
        first = await promote(scripts, event_id, "me", budget=2)
        assert first[:4] == [1, 2, 2, 1] and first[7] == 1
        quiet = await promote(scripts, event_id, "me", budget=0, last="2:1")
        assert quiet[:4] == [1, 0, 2, 1] and quiet[7] == 0
        await asyncio.sleep(0.2)
    [advance] = bus.advances(event_id)
    assert [a[0] for a in advance["admitted"]] == tickets[:2]
    assert (advance["served"], advance["waiting"], advance["status"]) == (2, 1, "open")
    for ticket, admitted_ms, expires_ms, jti in advance["admitted"]:
        record = json.loads(await redis.hget(EventKeys(event_id).tickets, ticket) or "{}")
        assert (record["s"], record["a"], record["x"], record["jti"]) == ("admitted", admitted_ms, expires_ms, jti)
        assert expires_ms - admitted_ms == 300_000  # the default token_ttl_seconds


async def test_promote_removes_at_most_a_batch_a_tick(
    redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "closed"})
    k = EventKeys(event_id)
    for i in range(5):  # joined before the event closed (status is checked by join)
        await redis.hset(k.settings, "status", "open")
        await join(scripts, event_id, f"u{i}")
        await redis.hset(k.settings, "status", "closed")
    await promote(scripts, event_id, "me", budget=0, batch=2)
    assert await redis.zcard(k.line) == 3
    await promote(scripts, event_id, "me", budget=0, batch=2)
    await promote(scripts, event_id, "me", budget=0, batch=2)
    assert await redis.zcard(k.line) == 0
    assert await redis.hget(k.stats, "removed") == "5"


async def test_promote_forgets_long_finished_tickets(
    redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "closed"})
    k = EventKeys(event_id)
    await redis.hset(k.settings, "status", "open")
    ticket = (await join(scripts, event_id, "u1"))[1]
    await redis.hset(k.settings, "status", "closed")
    await promote(scripts, event_id, "me", budget=0)
    assert json.loads(await redis.hget(k.tickets, ticket) or "{}")["s"] == "removed"
    await promote(scripts, event_id, "me", budget=0, keep_ms=3600_000)
    assert await redis.hexists(k.tickets, ticket)
    await promote(scripts, event_id, "me", budget=0, keep_ms=0)
    assert not await redis.hexists(k.tickets, ticket)
    assert not await redis.hexists(k.uids, "u1")
    assert await redis.zcard(k.done) == 0


async def test_touch_only_updates_tickets_still_waiting(
    redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    ticket = (await join(scripts, event_id, "u1"))[1]
    k = EventKeys(event_id)
    await redis.zadd(k.seen, {ticket: 1})
    assert await scripts.touch([k.seen], [ticket, new_ticket(event_id)]) == 1
    assert (await redis.zscore(k.seen, ticket) or 0) > 1
    assert await redis.zcard(k.seen) == 1
    assert await scripts.touch([k.seen], []) == 0


async def test_redeem_and_release_replies(redis: Redis, scripts: Scripts, events: Events, event_id: str) -> None:
    await events.put(event_id, {"status": "open", "session_ttl_seconds": 30})
    ticket = (await join(scripts, event_id, "u1"))[1]
    await promote(scripts, event_id, "me", budget=1)
    k = EventKeys(event_id)
    jti = json.loads(await redis.hget(k.tickets, ticket) or "{}")["jti"]
    redeem_keys = [k.tickets, k.pending, k.active, k.stats, k.settings, k.done, k.session("s1")]
    assert await scripts.redeem(redeem_keys, [ticket, "wrong"]) == ["invalid"]
    assert await scripts.redeem(redeem_keys, [new_ticket(event_id), jti]) == ["invalid"]
    ok = await scripts.redeem(redeem_keys, [ticket, jti])
    assert ok[0] == "ok"
    assert await redis.zscore(k.active, ticket) == int(ok[1])
    assert await scripts.redeem(redeem_keys, [ticket, jti]) == ["used"]
    assert await redis.get(k.session("s1")) == ticket
    assert await scripts.release([k.active, k.tickets, k.session("nobody")], [""]) == 0
    assert await scripts.release([k.active, k.tickets], [ticket]) == 1
    assert await scripts.release([k.active, k.tickets], [ticket]) == 0
    assert json.loads(await redis.hget(k.tickets, ticket) or "{}")["released"] == 1


async def test_join_holds_a_client_to_its_joins_per_minute(
    redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "client_joins_per_minute": 3})
    replies = [await join(scripts, event_id, f"u{i}") for i in range(5)]
    assert [r[0] for r in replies] == ["new", "new", "new", "rate_limited", "rate_limited"]
    assert 0 < replies[3][1] <= 20_000  # a third of a minute at most, until the next token
    assert (await join(scripts, event_id, "u0"))[0] == "existing"  # the line's own holders are not refused
    assert (await join(scripts, event_id, "u9", client="10.0.0.2"))[0] == "new"  # another address
    k = EventKeys(event_id)
    assert await redis.zcard(k.line) == 4
    assert 0 < await redis.pttl(k.client_joins("10.0.0.1")) <= 60_000  # the bucket forgets itself
    await events.put(event_id, {"client_joins_per_minute": 0})  # off, live
    assert (await join(scripts, event_id, "u5"))[0] == "new"


async def test_join_caps_the_tickets_a_client_has_waiting(
    redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "open", "client_max_waiting": 2})
    first, second = [(await join(scripts, event_id, f"u{i}"))[1] for i in range(2)]
    assert await join(scripts, event_id, "u2") == ["too_many_waiting", 2]
    assert (await join(scripts, event_id, "u3", client="10.0.0.2"))[0] == "new"
    await promote(scripts, event_id, "me", budget=1)  # the first leaves the line: a place frees up
    assert await redis.zscore(EventKeys(event_id).line, first) is None
    assert (await join(scripts, event_id, "u2"))[0] == "new"
    assert await join(scripts, event_id, "u4") == ["too_many_waiting", 2]
    assert await redis.smembers(EventKeys(event_id).client_waiting("10.0.0.1")) == {
        second,
        await uid_ticket(redis, event_id, "u2"),
    }


async def uid_ticket(redis: Redis, event: str, uid: str) -> str:
    return str(await redis.hget(EventKeys(event).uids, uid))


async def test_join_wants_a_fresh_unused_proof_when_the_event_asks(
    redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused", "pow_difficulty": 8})
    now_ms = int((await redis.time())[0]) * 1000
    assert await join(scripts, event_id, "u0") == ["proof_required", 8, "missing"]
    assert await join(scripts, event_id, "u0", proof=("s1", 7, now_ms + 60_000)) == ["proof_required", 8, "missing"]
    assert await join(scripts, event_id, "u0", proof=("s1", 8, now_ms - 1)) == ["proof_required", 8, "missing"]
    assert await redis.dbsize() == 2  # refusals wrote nothing: the settings and the event list only
    assert (await join(scripts, event_id, "u0", proof=("s1", 9, now_ms + 60_000)))[0] == "new"
    assert await join(scripts, event_id, "u1", proof=("s1", 9, now_ms + 60_000)) == ["proof_required", 8, "used"]
    assert 0 < await redis.pttl(EventKeys(event_id).proof("s1")) <= 60_000
    assert (await join(scripts, event_id, "u0"))[0] == "existing"  # a holder reloading needs no new proof
