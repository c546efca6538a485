"""Calls arriving together share one batch; each caller still gets its own answer. Pure: `send` is a
function of ours here (what joins make of a batch is tested in test_join_batches.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from waiting_room.store.batcher import Batcher

pytestmark = pytest.mark.usefixtures("deadline")


class Recorder:
    """A send that answers each item doubled, an item "bad" with its own error, and records the batches."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.batches: list[list[Any]] = []
        self.fail = fail

    async def __call__(self, items: list[Any]) -> list[Any]:
        self.batches.append(items)
        await asyncio.sleep(0.01)  # a round trip: calls arriving meanwhile wait for the next batch
        if self.fail is not None:
            raise self.fail
        return [ValueError(item) if item == "bad" else item * 2 for item in items]


async def test_an_idle_call_goes_at_once_alone() -> None:
    send = Recorder()
    batcher = Batcher(send)
    assert await batcher.call(1) == 2
    assert await batcher.call(2) == 4
    assert send.batches == [[1], [2]] and batcher.batches == 2


async def test_calls_arriving_together_or_during_a_batch_go_together_in_order() -> None:
    send = Recorder()
    batcher = Batcher(send)
    together = asyncio.gather(*(batcher.call(i) for i in range(5)))  # in the same turn of the loop
    await asyncio.sleep(0.001)  # that batch is in flight now
    replies = await asyncio.gather(together, *(batcher.call(i) for i in range(5, 50)))
    assert replies[0] == [0, 2, 4, 6, 8] and replies[1:] == [2 * i for i in range(5, 50)]
    assert send.batches == [list(range(5)), list(range(5, 50))]


async def test_more_than_a_batch_goes_in_several() -> None:
    send = Recorder()
    batcher = Batcher(send, max_batch=10)
    replies = await asyncio.gather(*(batcher.call(i) for i in range(35)))
    assert replies == [2 * i for i in range(35)]
    assert [len(b) for b in send.batches] == [10, 10, 10, 5]


async def test_one_failing_call_fails_alone() -> None:
    batcher = Batcher(Recorder())
    results = await asyncio.gather(batcher.call(1), batcher.call("bad"), batcher.call(3), return_exceptions=True)
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], ValueError)


async def test_a_caller_that_goes_away_does_not_disturb_the_others() -> None:
    batcher = Batcher(Recorder())
    first = asyncio.create_task(batcher.call(1))
    gone = asyncio.create_task(batcher.call(2))
    await asyncio.sleep(0)
    gone.cancel()
    assert await first == 2
    assert await batcher.call(3) == 6


async def test_a_send_that_fails_fails_every_caller_of_the_batch() -> None:
    batcher = Batcher(Recorder(fail=ConnectionError("Redis is unreachable")))
    results = await asyncio.gather(*(batcher.call(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results), results
    assert batcher.queued == 0
