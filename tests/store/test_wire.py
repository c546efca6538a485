"""Join batches' own connection: packed commands in, one reply each out, and a broken or abandoned
exchange never leaves a stale reply for the next batch."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.redis_client import connect
from waiting_room.store.wire import Line, pack

pytestmark = pytest.mark.usefixtures("deadline")


def test_pack_is_resp() -> None:
    assert pack([["SET", "k", 12], ["GET", "ké"]]) == (
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n*2\r\n$3\r\nGET\r\n$3\r\nk\xc3\xa9\r\n"
    )


async def test_each_command_gets_its_reply_and_an_error_stays_with_its_command(redis: Redis) -> None:
    key = f"wire:{uuid4().hex}"
    line = Line(redis)
    replies = await line.run([["SET", key, "x"], ["INCR", key], ["APPEND", key, "yz"], ["GET", key]])
    assert replies[0] == "OK" and isinstance(replies[1], ResponseError) and replies[2:] == [3, "xyz"]


async def test_a_connection_killed_under_it_is_reopened_and_the_batch_goes_through(
    redis_server: EmbeddedRedis, redis: Redis
) -> None:
    client = connect(redis_server.url)
    try:
        line = Line(client)
        key = f"wire:{uuid4().hex}"
        assert await line.run([["INCR", key]]) == [1]
        await redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert await line.run([["INCR", key]]) == [2]
    finally:
        await client.aclose()


async def test_a_batch_abandoned_mid_reply_leaves_nothing_for_the_next(redis: Redis) -> None:
    line = Line(redis)
    key = f"wire:{uuid4().hex}"
    slow = asyncio.create_task(line.run([["BLPOP", key, 5]]))
    await asyncio.sleep(0.05)  # sent; its reply comes once the key has something
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    await redis.rpush(key, "late")
    assert await line.run([["ECHO", "mine"]]) == ["mine"]
