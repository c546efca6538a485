"""Pre-queue fairness: at opening, early arrivals are in uniformly random order, all ahead of later ones.

The order of a pre-queue ticket is a random score drawn at join time; the
real join and promote scripts (on fakeredis, for speed) turn the scores into
the admission order. Seeded draws make the statistics reproducible: the test
checks the mechanism — scores in, order out — not the quality of the OS
random generator.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import fakeredis
import pytest

from waiting_room.promoter import Promoter
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys
from waiting_room.store.queue import SHUFFLE_RANGE, Queue
from waiting_room.store.scripts import Scripts

# chi-square critical value for 5 degrees of freedom at p = 0.001
CHI2_5_DOF_P001 = 20.515
RUNS = 600
EARLY = 3


@pytest.mark.parametrize("seed", [7])
async def test_pre_queue_order_is_uniformly_random_and_ahead_of_later_joins(seed: int) -> None:
    rng = random.Random(seed)
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)
    scripts = Scripts.register(redis)
    queue = Queue(redis, scripts, "http://test", shuffle=lambda: rng.randrange(SHUFFLE_RANGE))
    events = Events(redis)
    counts: Counter[tuple[int, ...]] = Counter()
    for run in range(RUNS):
        event = f"fair-{run}"
        await events.put(event, {"opens_at": time.time() + 3600, "status": "open"})
        early = [(await queue.join(event, f"early-{run}-{i}-0123456789"))[0].ticket for i in range(EARLY)]
        await events.put(event, {"opens_at": None})
        late = [(await queue.join(event, f"late-{run}-{i}-0123456789"))[0].ticket for i in range(2)]
        line = await redis.zrange(EventKeys(event).line, 0, -1)
        assert line[EARLY:] == late, "a later joiner got ahead of an early one"
        counts[tuple(early.index(t) for t in line[:EARLY])] += 1

    permutations = list(itertools.permutations(range(EARLY)))
    assert set(counts) == set(permutations), f"some orders never happened: {counts}"
    expected = RUNS / len(permutations)
    chi2 = sum((counts[p] - expected) ** 2 / expected for p in permutations)
    assert chi2 < CHI2_5_DOF_P001, f"pre-queue order is not uniform (chi2 {chi2:.1f}): {counts}"


async def test_nobody_is_admitted_before_opening() -> None:
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)
    scripts = Scripts.register(redis)
    queue, events = Queue(redis, scripts, "http://test"), Events(redis)
    await events.put("early", {"opens_at": time.time() + 3600, "rate_per_minute": 1_000_000})
    tickets = [(await queue.join("early", f"uid-{i}-0123456789abcdef"))[0] for i in range(5)]
    assert {t.state for t in tickets} == {"pre_queue"} and {t.position for t in tickets} == {None}
    promoter = Promoter(redis, scripts, tick_ms=100)
    for _ in range(5):
        await promoter.tick()
    assert [r.admitted for r in await promoter.tick()] == [0]
    assert await redis.zcard(EventKeys("early").line) == 5
    await events.put("early", {"opens_at": time.time() - 1})
    await promoter.tick()
    await promoter.tick()
    states = [(await queue.status(t.ticket)) for t in tickets]
    assert all(s is not None and s.state == "admitted" for s in states), states
