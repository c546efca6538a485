"""Joins arriving together go to Redis as one join.lua run per event, in one round trip; each caller
gets its own answer, in join order, and a failure stays with the joins it concerns."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support.joining import uid
from waiting_room.store.embedded import free_port
from waiting_room.store.events import Events
from waiting_room.store.keys import Keyspace
from waiting_room.store.queue import Queue, QueueError
from waiting_room.store.scripts import Scripts

pytestmark = pytest.mark.usefixtures("deadline")


async def test_concurrent_joins_share_runs_and_keep_join_order(
    redis: Redis, keyspace: Keyspace, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    n = 60
    same = uid()  # one browser twice in the batch: its second join takes no sequence number's effect
    calls = [uid() for _ in range(n // 2)] + [same, same] + [uid() for _ in range(n // 2 - 1)]
    joined = await asyncio.gather(*(queue.join(event_id, u) for u in calls))
    assert queue.scripts.joins.batches < n
    assert [created for _, created in joined].count(False) == 1
    # gather keeps call order, and a batch keeps it too: the i-th new ticket is the i-th in line
    assert [view.position for view, created in joined if created] == list(range(1, n + 1))
    assert len({view.ticket for view, _ in joined}) == n
    k = keyspace.event(event_id)
    assert await redis.hget(k.stats, "issued") == str(n)  # counted once per batch, not lost
    records = await redis.hmget(k.tickets, [view.ticket for view, created in joined if created])
    orders = [json.loads(r)["o"] for r in records]
    assert orders == sorted(orders) and len(set(orders)) == n  # the sequence numbers a batch takes at once


async def test_one_batch_serves_several_events_and_each_join_gets_its_own_answer(
    queue: Queue, events: Events, event_id: str
) -> None:
    other, gone = f"{event_id}x", f"{event_id}y"  # `gone` does not exist
    await events.put(event_id, {"status": "paused"})
    await events.put(other, {"status": "paused"})
    same = uid()
    calls = [(event_id, uid()), (other, uid()), (event_id, same), (gone, uid()), (event_id, same), (other, uid())]
    results = await asyncio.gather(*(queue.join(e, u) for e, u in calls), return_exceptions=True)
    assert isinstance(results[3], QueueError) and results[3].code == "unknown_event"
    views = [r for r in results if not isinstance(r, BaseException)]
    assert [(v.event, v.position, created) for v, created in views] == [
        (event_id, 1, True),
        (other, 1, True),
        (event_id, 2, True),
        (event_id, 2, False),  # the same browser again, in the same batch: its ticket, not a new one
        (other, 2, True),
    ]
    assert views[2][0].ticket == views[3][0].ticket
    assert queue.scripts.joins.batches <= 2


async def test_joins_after_redis_forgot_the_scripts_load_them_and_go_through(
    redis: Redis, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    await queue.join(event_id, uid())
    await redis.script_flush()  # as after a restart: NOSCRIPT for every run of the batch, which ran nothing
    joined = await asyncio.gather(*(queue.join(event_id, uid()) for _ in range(10)))
    assert [view.position for view, _ in joined] == list(range(2, 12))


async def test_redis_unreachable_fails_every_join_of_the_batch() -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}", decode_responses=True, retry_on_error=[])
    try:
        queue = Queue(down, Scripts(down), "http://127.0.0.1")
        results = await asyncio.gather(*(queue.join("e", uid()) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await down.aclose()
