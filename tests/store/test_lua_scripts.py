"""The Lua scripts through their typed wrappers on a real redis-server: KEYS/ARGV headers, replies, records."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import fields

import pytest
from redis.asyncio import Redis
from support.promoting import BusRecorder
from support.redis_server import record

from waiting_room.core import messages
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.proof import Proof
from waiting_room.core.states import EventStatus
from waiting_room.core.tickets import RECORD_FIELDS, TicketRecord, new_ticket
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys, Keyspace
from waiting_room.store.scripts import (
    NAMES,
    AlreadyJoined,
    ClientLimited,
    Joined,
    JoinRefused,
    JoinReply,
    PromoteArgs,
    Promoted,
    ProofNeeded,
    Redeemed,
    Scripts,
    TooManyWaiting,
    source,
)

pytestmark = pytest.mark.usefixtures("deadline")


async def join(
    scripts: Scripts,
    k: EventKeys,
    uid: str,
    replace: str = "",
    client: str = "10.0.0.1",
    proof: Proof | None = None,
) -> JoinReply:
    return await scripts.join(
        k,
        ticket=new_ticket(k.event),
        uid=uid,
        shuffle=secrets.randbelow(1 << 40),
        replace=replace,
        jti=secrets.token_urlsafe(16),
        client=client,
        proof=proof,
        tick_ms=500,
    )


async def joined(scripts: Scripts, k: EventKeys, uid: str) -> str:
    reply = await join(scripts, k, uid)
    assert isinstance(reply, Joined)
    return reply.ticket


async def fill_bucket(redis: Redis, k: EventKeys, tokens: float) -> None:
    """The rate's bucket holding `tokens` now (as if the promoter had just refilled it)."""
    seconds, micros = await redis.time()
    await redis.hset(k.bucket, mapping={"tokens": tokens, "at": seconds * 1000 + micros // 1000})


async def promote(
    scripts: Scripts,
    k: EventKeys,
    owner: str,
    budget: int | None = None,
    *,
    last: str = "",
    batch: int = 500,
    keep_ms: int = 3600_000,
    tick_ms: int = 10**9,
    lapse_ms: int = 10_000,
) -> Promoted:
    """One tick; `budget`: first fill the rate's bucket with that many tickets (a long tick_ms lets it spend
    them all in one tick)."""
    if budget is not None:
        await fill_bucket(scripts.redis, k, budget)
    args = PromoteArgs(owner, 2000, tick_ms, None, Keyspace(k.prefix).bus, last, batch, keep_ms, lapse_ms=lapse_ms)
    return await scripts.promote(k, args)


async def test_join_replies(keyspace: Keyspace, scripts: Scripts, events: Events, event_id: str) -> None:
    assert await join(scripts, keyspace.event(event_id), "u1") == JoinRefused("unknown_event")
    await events.put(event_id, {"status": "paused"})
    first = await join(scripts, keyspace.event(event_id), "u1")
    assert isinstance(first, Joined)
    assert (first.rank, first.waiting, first.served_total, first.pre_queue, first.observed_rate) == (0, 1, 0, False, 0)
    assert (first.status, first.opens_at) == (EventStatus.PAUSED, None)
    assert await join(scripts, keyspace.event(event_id), "u1") == AlreadyJoined(first.ticket)
    # `replace` only takes effect for the uid's own (finished) ticket
    assert await join(scripts, keyspace.event(event_id), "u1", replace=new_ticket(event_id)) == AlreadyJoined(
        first.ticket
    )
    replaced = await join(scripts, keyspace.event(event_id), "u1", replace=first.ticket)
    assert isinstance(replaced, Joined) and replaced.ticket != first.ticket
    await events.put(event_id, {"status": "sold_out"})
    assert await join(scripts, keyspace.event(event_id), "u2") == JoinRefused("event_closed")


async def test_promote_is_fenced_by_the_lease(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "open"})
    ticket = await joined(scripts, keyspace.event(event_id), "u1")
    k = keyspace.event(event_id)
    await redis.set(k.lease, "someone-else", px=3000)
    async with BusRecorder(redis, keyspace.bus) as bus:
        assert await promote(scripts, keyspace.event(event_id), "me", budget=10) == Promoted(leading=False)
    assert await redis.zrank(k.line, ticket) == 0
    assert await redis.hget(k.stats, "served_total") is None
    assert await redis.get(k.lease) == "someone-else"
    assert bus.advances(event_id) == []
    await redis.delete(k.lease)
    reply = await promote(scripts, keyspace.event(event_id), "me", budget=10)
    assert (reply.leading, reply.admitted, reply.served_total, reply.waiting) == (True, 1, 1, 0)
    assert await redis.get(k.lease) == "me"
    assert 0 < await redis.pttl(k.lease) <= 2000


async def test_promote_publishes_only_changes(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "open"})
    tickets = [await joined(scripts, keyspace.event(event_id), f"u{i}") for i in range(3)]
    async with BusRecorder(redis, keyspace.bus) as bus:
        first = await promote(scripts, keyspace.event(event_id), "me", budget=2)
        assert (first.admitted, first.served_total, first.waiting, first.published) == (2, 2, 1, True)
        quiet = await promote(scripts, keyspace.event(event_id), "me", budget=0, last="2:1")
        assert (quiet.admitted, quiet.served_total, quiet.waiting, quiet.published) == (0, 2, 1, False)
        await events.post_notice(event_id, "marker", "info")  # published after both ticks
        await bus.wait_for(lambda: any(isinstance(m, messages.Notice) for m in bus.messages), "the marker")
    [advance] = bus.advances(event_id)  # parsed by messages.parse: promote.lua writes the typed shape
    assert [a.ticket for a in advance.admitted] == tickets[:2]
    assert (advance.served, advance.waiting, advance.status) == (2, 1, EventStatus.OPEN)
    assert (advance.removed, advance.expired) == ((), ())
    for admitted in advance.admitted:
        found = await record(redis, keyspace.event(event_id), admitted.ticket)
        assert found.stored == "admitted" and found.admission == admitted.admission
        assert admitted.admission.expires_ms - admitted.admission.admitted_ms == 300_000  # default token_ttl
        assert admitted.admission.admitted_ms == advance.at_ms


async def test_promote_removes_at_most_a_batch_a_tick(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "closed"})
    k = keyspace.event(event_id)
    for i in range(5):  # joined before the event closed (status is checked by join)
        await redis.hset(k.settings, "status", "open")
        await join(scripts, keyspace.event(event_id), f"u{i}")
        await redis.hset(k.settings, "status", "closed")
    await promote(scripts, keyspace.event(event_id), "me", budget=0, batch=2)
    assert await redis.zcard(k.line) == 3
    await promote(scripts, keyspace.event(event_id), "me", budget=0, batch=2)
    await promote(scripts, keyspace.event(event_id), "me", budget=0, batch=2)
    assert await redis.zcard(k.line) == 0
    assert await redis.hget(k.stats, "removed") == "5"


async def test_promote_forgets_long_finished_tickets(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "closed"})
    k = keyspace.event(event_id)
    await redis.hset(k.settings, "status", "open")
    ticket = await joined(scripts, keyspace.event(event_id), "u1")
    await redis.hset(k.settings, "status", "closed")
    await promote(scripts, keyspace.event(event_id), "me", budget=0)
    removed = await record(redis, keyspace.event(event_id), ticket)
    assert removed.stored == "removed" and removed.finished_ms is not None
    await promote(scripts, keyspace.event(event_id), "me", budget=0, keep_ms=3600_000)
    assert await redis.hexists(k.tickets, ticket)
    await promote(scripts, keyspace.event(event_id), "me", budget=0, keep_ms=0)
    assert not await redis.hexists(k.tickets, ticket)
    assert not await redis.hexists(k.uids, "u1")
    assert await redis.zcard(k.done) == 0


async def test_touch_only_updates_tickets_still_waiting(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    ticket = await joined(scripts, keyspace.event(event_id), "u1")
    k = keyspace.event(event_id)
    await redis.zadd(k.departed, {ticket: 1})
    assert await scripts.touch(k, [ticket, new_ticket(event_id)]) == 1
    assert (await redis.zscore(k.departed, ticket) or 0) > 1
    assert await redis.zcard(k.departed) == 1
    assert await scripts.touch(k, []) == 0


async def test_redeem_and_release_replies(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "open", "session_ttl_seconds": 30})
    ticket = await joined(scripts, keyspace.event(event_id), "u1")
    await promote(scripts, keyspace.event(event_id), "me", budget=1)
    k = keyspace.event(event_id)
    jti = (await record(redis, keyspace.event(event_id), ticket)).jti
    assert jti is not None
    assert await scripts.redeem(k, ticket, "wrong", "s0") == Redeemed("invalid")
    assert await scripts.redeem(k, new_ticket(event_id), jti, "s0") == Redeemed("invalid")
    ok = await scripts.redeem(k, ticket, jti, "s0")
    assert ok.outcome == "ok"
    assert await redis.zscore(k.active, ticket) == ok.session_expires_ms
    redeemed = await record(redis, keyspace.event(event_id), ticket)
    assert redeemed.stored == "redeemed" and redeemed.session_expires_ms == ok.session_expires_ms
    assert redeemed.redeemed_ms is not None and redeemed.session_expires_ms - redeemed.redeemed_ms == 30_000
    assert await scripts.redeem(k, ticket, jti, "s0") == Redeemed("used")
    assert await scripts.release(k, ticket) is True
    assert await scripts.release(k, ticket) is False
    assert (await record(redis, keyspace.event(event_id), ticket)).released


async def test_redeem_opens_the_session_its_secret_names(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "open", "session_ttl_seconds": 30})
    ticket = await joined(scripts, k, "u1")
    await promote(scripts, k, "me", budget=1)
    jti = (await record(redis, k, ticket)).jti
    assert jti is not None
    assert (await scripts.redeem(k, ticket, jti, "s1")).outcome == "ok"
    assert await redis.get(k.session("s1")) == ticket
    assert await scripts.release_session(k, "nobody") is False
    assert await scripts.release_session(k, "s1") is True
    assert await redis.get(k.session("s1")) is None
    assert await scripts.release_session(k, "s1") is False


async def test_join_holds_a_client_to_its_joins_per_minute(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused", "client_joins_per_minute": 3})
    replies = [await join(scripts, k, f"u{i}") for i in range(5)]
    assert [type(r) for r in replies] == [Joined, Joined, Joined, ClientLimited, ClientLimited]
    limited = replies[3]
    assert isinstance(limited, ClientLimited)
    assert 0 < limited.wait_ms <= 20_000  # a third of a minute at most, until the next token
    assert isinstance(await join(scripts, k, "u0"), AlreadyJoined)  # the line's own holders are not refused
    assert isinstance(await join(scripts, k, "u9", client="10.0.0.2"), Joined)  # another address
    assert await redis.zcard(k.line) == 4
    assert 0 < await redis.pttl(k.client_joins("10.0.0.1")) <= 60_000  # the bucket forgets itself
    await events.put(event_id, {"client_joins_per_minute": 0})  # off, live
    assert isinstance(await join(scripts, k, "u5"), Joined)


async def test_join_caps_the_tickets_a_client_has_waiting(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "open", "client_max_waiting": 2})
    first, second = [await joined(scripts, k, f"u{i}") for i in range(2)]
    assert await join(scripts, k, "u2") == TooManyWaiting(2)
    assert isinstance(await join(scripts, k, "u3", client="10.0.0.2"), Joined)
    await promote(scripts, k, "me", budget=1)  # the first leaves the line: a place frees up
    assert await redis.zscore(k.line, first) is None
    assert isinstance(await join(scripts, k, "u2"), Joined)
    assert await join(scripts, k, "u4") == TooManyWaiting(2)
    assert await redis.smembers(k.client_waiting("10.0.0.1")) == {
        second,
        await uid_ticket(redis, k, "u2"),
    }


async def uid_ticket(redis: Redis, k: EventKeys, uid: str) -> str:
    return str(await redis.hget(k.uids, uid))


async def test_join_wants_a_fresh_unused_proof_when_the_event_asks(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused", "pow_difficulty": 8})
    now = int((await redis.time())[0])
    assert await join(scripts, k, "u0") == ProofNeeded(8, used=False)
    assert await join(scripts, k, "u0", proof=Proof("s1", 7, now + 60)) == ProofNeeded(8, used=False)
    assert await join(scripts, k, "u0", proof=Proof("s1", 8, now - 1)) == ProofNeeded(8, used=False)
    written = [key async for key in redis.scan_iter(match=f"{keyspace.prefix}:*")]
    assert sorted(written) == sorted([keyspace.events, k.settings])  # refusals wrote nothing
    assert isinstance(await join(scripts, k, "u0", proof=Proof("s1", 9, now + 60)), Joined)
    assert await join(scripts, k, "u1", proof=Proof("s1", 9, now + 60)) == ProofNeeded(8, used=True)
    assert 0 < await redis.pttl(k.proof("s1")) <= 60_000
    assert isinstance(await join(scripts, k, "u0"), AlreadyJoined)  # a holder reloading needs no new proof


# --- what left the line, and who holds a socket --------------------------------------


async def until_marker(bus: BusRecorder, events: Events, event: str) -> None:
    """Everything published before now has been recorded."""
    await events.post_notice(event, "marker", "info")
    await bus.wait_for(lambda: any(isinstance(m, messages.Notice) for m in bus.messages), "the marker")


async def test_advance_says_what_left_the_line_under_a_sequence_number(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    """Admissions pop from the head; abandoned tickets leave from the middle, with their order scores."""
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "open", "abandon_after_seconds": 5})
    tickets = [await joined(scripts, k, f"u{i}") for i in range(8)]
    scores = {t: int(await redis.zscore(k.line, t) or 0) for t in tickets}
    seconds, _ = await redis.time()
    await redis.zadd(k.departed, {tickets[3]: (seconds - 60) * 1000, tickets[6]: (seconds - 60) * 1000})  # setup
    async with BusRecorder(redis, keyspace.bus) as bus:
        await promote(scripts, k, "me", budget=2)
        await promote(scripts, k, "me", budget=1)
        quiet = await promote(scripts, k, "me", budget=0, last="3:3")
        assert not quiet.published
        await until_marker(bus, events, event_id)
    first, second = bus.advances(event_id)
    assert (first.seq, first.popped, set(first.removed)) == (1, 2, {tickets[3], tickets[6]})
    assert sorted(first.gone) == [scores[tickets[3]], scores[tickets[6]]]
    assert (second.seq, second.popped, second.gone) == (2, 1, ())
    assert await redis.get(k.advances) == "2"
    assert await redis.zrange(k.line, 0, -1) == [tickets[4], tickets[5], tickets[7]]


async def test_a_closed_line_is_popped_from_the_head(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused"})
    for i in range(3):
        await joined(scripts, k, f"u{i}")
    await events.put(event_id, {"status": "closed"})
    async with BusRecorder(redis, keyspace.bus) as bus:
        await promote(scripts, k, "me", budget=5, batch=2)
        await promote(scripts, k, "me", budget=5, batch=2)
        await until_marker(bus, events, event_id)
    assert [(a.seq, a.popped, a.gone) for a in bus.advances(event_id)] == [(1, 2, ()), (2, 1, ())]


async def test_holding_and_departing(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    """Departed from the join; held at connect; departed again at close, unless a newer socket holds it."""
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused"})
    one, two = [await joined(scripts, k, f"u{i}") for i in range(2)]
    since_join = await redis.zscore(k.departed, one)
    assert since_join is not None and await redis.zscore(k.departed, two) is not None
    assert await scripts.hold(k, "web-a", 2, [one, two]), "a new heartbeat entry"
    assert not await scripts.hold(k, "web-a", 2, []), "a heartbeat alone"
    assert await redis.zcard(k.departed) == 0
    assert await scripts.touch(k, [one]) == 0, "a poll does not depart a held ticket"
    await scripts.hold(k, "web-b", 1, [two])  # its holder reconnected to another process
    assert await scripts.depart(k, "web-a", [one, two]) == 1
    assert await redis.zrange(k.departed, 0, -1) == [one]
    assert (await redis.zscore(k.departed, one) or 0) >= since_join
    assert await redis.hgetall(k.holders) == {two: "web-b"}
    assert await redis.smembers(k.held("web-a")) == set()


async def test_a_dead_process_holders_depart_as_of_its_last_heartbeat(
    keyspace: Keyspace, redis: Redis, scripts: Scripts, events: Events, event_id: str
) -> None:
    k = keyspace.event(event_id)
    await events.put(event_id, {"status": "paused"})
    one, two, three = [await joined(scripts, k, f"u{i}") for i in range(3)]
    await scripts.hold(k, "dead", 3, [one, two, three])
    await scripts.hold(k, "alive", 1, [three])  # reconnected elsewhere
    assert await scripts.reap(k, "dead", lapse_ms=10_000) == -1, "its heartbeat is fresh"
    seconds, _ = await redis.time()
    beat = (seconds - 30) * 1000
    await redis.hset(k.conns, "dead", f"3:{beat}")  # setup: silent for 30 s
    assert (await promote(scripts, k, "me", budget=0)).lapsed == ("dead",)
    assert await scripts.reap(k, "dead", lapse_ms=10_000) == 2
    assert dict(await redis.zrange(k.departed, 0, -1, withscores=True)) == {one: beat, two: beat}
    assert list(await redis.hgetall(k.conns)) == ["alive"]
    assert await redis.hgetall(k.holders) == {three: "alive"}
    assert not await redis.exists(k.held("dead"))
    assert (await promote(scripts, k, "me", budget=0)).lapsed == ()
    assert await scripts.reap(k, "alive", lapse_ms=0) == 1, "stopping: its holders depart now"
    assert await redis.zscore(k.departed, three) is not None


# --- the scripts against the schemas they share with Python ------------------------


def _written_record_fields(lua: str) -> set[str]:
    """Every field a script writes into a ticket record: `rec.x =`, `r.x =`, `record.x =`, `{x = ...}`."""
    assigned = set(re.findall(r"\b(?:rec|r|record)\.(\w+)\s*=[^=]", lua))
    literal = re.search(r"local record = \{(.*?)\}", lua)
    if literal:
        assigned |= set(re.findall(r"(\w+)\s*=", literal.group(1)))
    return assigned


def test_every_record_field_the_scripts_write_is_in_the_schema_and_decoded() -> None:
    written = {name: _written_record_fields(source(name)) for name in NAMES}
    assert written["join"] >= {"s", "o", "u", "j", "jti", "p"}  # the parse finds what join writes
    everything = set().union(*written.values())
    assert everything == set(RECORD_FIELDS), "RECORD_FIELDS and the scripts disagree"
    full = {"s": "redeemed", "o": 1, "u": "u", "j": 1, "jti": "t", "p": 1, "a": 2, "x": 3, "r": 4, "sx": 5, "f": 6}
    decoded = TicketRecord.decode(json.dumps({**full, "released": 1}))
    assert all(getattr(decoded, f.name) not in (None, False, 0) for f in fields(TicketRecord))


def test_the_scripts_fall_back_to_the_settings_defaults() -> None:
    """Events always write every setting, but a script's fallback must still be the same default."""
    defaults = EventSettings.defaults("x").to_json()
    found = 0
    for name in NAMES:
        for value, field in re.findall(r'or "([^"]*)"\)? -- default: (\w+)', source(name)):
            assert value == str(defaults[field]), f"{name}.lua: {field} defaults to {value}"
            found += 1
    assert found >= 6


def test_the_post_opening_order_is_passed_to_join_not_repeated() -> None:
    assert "1099511627776" not in source("join") and "tonumber(ARGV[1]) + seq" in source("join")
