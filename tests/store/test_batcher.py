"""Joins arriving together share one round trip to Redis; each caller still gets its own answer."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from waiting_room.store.batcher import Batcher
from waiting_room.store.embedded import free_port
from waiting_room.store.events import Events
from waiting_room.store.queue import Queue

pytestmark = pytest.mark.usefixtures("deadline")

ECHO = "return {KEYS[1], ARGV[1]}"


def uid() -> str:
    return secrets.token_urlsafe(18)


async def test_concurrent_joins_share_round_trips_and_keep_join_order(
    queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    n = 60
    joined = await asyncio.gather(*(queue.join(event_id, uid()) for _ in range(n)))
    assert queue.scripts.joins.round_trips < n
    assert all(created for _, created in joined)
    # gather keeps call order, and a batch keeps it too: the i-th caller is the i-th in line
    assert [view.position for view, _ in joined] == list(range(1, n + 1))
    assert len({view.ticket for view, _ in joined}) == n


async def test_an_idle_call_goes_at_once_alone(redis: Redis) -> None:
    batcher = Batcher(redis)
    echo = redis.register_script(ECHO)
    await redis.script_load(echo.script)
    assert await batcher.call(echo, ["k"], ["a"]) == ["k", "a"]
    assert await batcher.call(echo, ["k"], ["b"]) == ["k", "b"]
    assert batcher.round_trips == 2


async def test_more_than_a_batch_goes_in_several(redis: Redis) -> None:
    batcher = Batcher(redis, max_batch=10)
    echo = redis.register_script(ECHO)
    await redis.script_flush()  # forgotten scripts are loaded and the batch sent again
    replies = await asyncio.gather(*(batcher.call(echo, ["k"], [i]) for i in range(35)))
    assert replies == [["k", str(i)] for i in range(35)]
    assert batcher.round_trips == 5  # the first one answered NOSCRIPT


async def test_one_failing_call_fails_alone(redis: Redis) -> None:
    batcher = Batcher(redis)
    echo = redis.register_script(ECHO)
    broken = redis.register_script("return redis.call('INCR', KEYS[1])")
    await redis.set("text", "not a number")
    await redis.script_load(echo.script)
    await redis.script_load(broken.script)
    results = await asyncio.gather(
        batcher.call(echo, ["k"], ["1"]),
        batcher.call(broken, ["text"], []),
        batcher.call(echo, ["k"], ["3"]),
        return_exceptions=True,
    )
    assert results[0] == ["k", "1"] and results[2] == ["k", "3"]
    assert isinstance(results[1], ResponseError)


async def test_a_caller_that_goes_away_does_not_disturb_the_others(redis: Redis) -> None:
    batcher = Batcher(redis)
    echo = redis.register_script(ECHO)
    first = asyncio.create_task(batcher.call(echo, ["k"], ["1"]))
    gone = asyncio.create_task(batcher.call(echo, ["k"], ["2"]))
    await asyncio.sleep(0)
    gone.cancel()
    assert await first == ["k", "1"]
    assert await batcher.call(echo, ["k"], ["3"]) == ["k", "3"]


async def test_redis_unreachable_fails_every_caller_of_the_batch() -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}", decode_responses=True, retry_on_error=[])
    try:
        batcher = Batcher(down)
        echo = down.register_script(ECHO)
        results = await asyncio.gather(*(batcher.call(echo, ["k"], [i]) for i in range(3)), return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await down.aclose()
