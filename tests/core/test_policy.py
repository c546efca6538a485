"""The admission token bucket, driven the way the promoter drives it, over simulated time."""

from __future__ import annotations

import math
import random

import pytest

from waiting_room.core.policy import TokenBucket, tick_share

RATES = [1, 7, 60, 100, 600, 1200, 6000, 100_000]
TICKS = [0.05, 0.1, 0.5, 1.0, 2.0]


def run(
    rng: random.Random, rate: float, tick: float, ticks: int, *, jitter: bool, demand: bool
) -> tuple[list[float], list[int]]:
    """Tick `ticks` times; returns each tick's time and how many it admitted."""
    bucket = TokenBucket()
    now = 0.0
    times: list[float] = []
    admitted: list[int] = []
    for _ in range(ticks):
        if jitter:
            roll = rng.random()
            if roll < 0.03:
                now += tick * rng.uniform(5, 200)  # a long stall (GC, Redis outage)
            elif roll < 0.06:
                now += tick * rng.uniform(0, 0.1)  # an early tick
            else:
                now += tick * rng.uniform(0.5, 1.5)
        else:
            now += tick
        bucket.refill(now, rate, tick)
        if jitter and rng.random() < 0.03:
            bucket.reset(now)  # paused, or leadership lost and regained
            count = 0
        else:
            budget = bucket.budget()
            # capacity or a short line may admit fewer than the budget
            count = budget if not demand or rng.random() < 0.7 else rng.randint(0, budget)
        bucket.spend(count)
        times.append(now)
        admitted.append(count)
    return times, admitted


def worst_excess(times: list[float], admitted: list[int], rate: float) -> float:
    """The largest (admissions in ticks i..j) - rate * (t_j - t_i) over every window of ticks."""
    worst = -math.inf
    for i in range(len(times)):
        total = 0
        for j in range(i, len(times)):
            total += admitted[j]
            worst = max(worst, total - rate / 60 * (times[j] - times[i]))
    return worst


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rate", RATES)
def test_no_window_exceeds_the_rate_by_more_than_a_share(seed: int, rate: int) -> None:
    rng = random.Random(seed * 1000 + rate)
    tick = rng.choice(TICKS)
    times, admitted = run(rng, rate, tick, 250, jitter=True, demand=True)
    # one tick's share, plus one for whole tickets
    assert worst_excess(times, admitted, rate) <= tick_share(rate, tick) + 1 + 1e-9
    assert max(admitted) <= max(1, math.ceil(tick_share(rate, tick)))


@pytest.mark.parametrize("tick", TICKS)
@pytest.mark.parametrize("rate", RATES)
def test_steady_ticks_admit_the_full_rate(rate: int, tick: float) -> None:
    ticks = max(200, math.ceil(120 / tick))  # at least two minutes
    times, admitted = run(random.Random(0), rate, tick, ticks, jitter=False, demand=False)
    nominal = rate / 60 * (times[-1] - times[0])
    assert nominal - 1 - 1e-6 <= sum(admitted) <= nominal + tick_share(rate, tick) + 1
    assert worst_excess(times[:200], admitted[:200], rate) <= tick_share(rate, tick) + 1 + 1e-9


@pytest.mark.parametrize("tick", TICKS)
def test_a_fractional_share_is_carried_over(tick: float) -> None:
    """100/min at 500 ms is 0.83 a tick: throwing the remainder away would admit 60/min."""
    times, admitted = run(random.Random(0), 100, tick, math.ceil(600 / tick), jitter=False, demand=False)
    assert sum(admitted) >= 100 / 60 * (times[-1] - times[0]) - 1


def test_one_a_minute_still_admits() -> None:
    times, admitted = run(random.Random(0), 1, 0.5, 1200, jitter=False, demand=False)  # 10 minutes
    first = next(t for t, n in zip(times, admitted, strict=True) if n)
    assert 59.5 <= first <= 61
    assert sum(admitted) in (9, 10)
    assert max(admitted) == 1


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("tick", TICKS)
def test_a_stall_lets_through_at_most_one_share(rate: int, tick: float) -> None:
    bucket = TokenBucket()
    bucket.refill(0.0, rate, tick)
    bucket.refill(3600.0, rate, tick)  # an hour without a tick
    share = tick_share(rate, tick)
    assert bucket.tokens <= share + 1
    assert bucket.budget() == max(1, math.ceil(share))


@pytest.mark.parametrize(("rate", "tick", "per_tick"), [(1200, 0.1, 2), (600, 0.5, 5), (100, 0.5, 1), (700, 0.3, 4)])
def test_one_tick_admits_at_most_its_share_rounded_up(rate: int, tick: float, per_tick: int) -> None:
    bucket = TokenBucket()
    bucket.refill(0.0, rate, tick)
    bucket.refill(tick * 1.9, rate, tick)  # a late tick
    assert bucket.budget() == per_tick


@pytest.mark.parametrize(("rate", "tick"), [(120, 0.5), (600, 0.5), (1200, 0.1), (6000, 0.5), (60_000, 0.05)])
def test_a_slightly_late_tick_on_a_fixed_grid_loses_nothing(rate: int, tick: float) -> None:
    """Late by less than one ticket's worth of time: the next tick, early by as much, makes it up."""
    late = 0.9 * 60 / rate
    bucket = TokenBucket()
    total = 0
    for k in range(2001):
        bucket.refill(k * tick + (late if k % 7 == 3 else 0.0), rate, tick)
        total += bucket.budget()
        bucket.spend(bucket.budget())
    assert total >= rate / 60 * 2000 * tick - 1 - 1e-6


def test_a_new_bucket_starts_empty() -> None:
    bucket = TokenBucket()
    bucket.refill(1000.0, 600, 0.5)
    assert bucket.budget() == 0
    bucket.refill(1000.5, 600, 0.5)
    assert bucket.budget() == 5


def test_reset_empties_and_restarts_the_clock() -> None:
    bucket = TokenBucket()
    bucket.refill(0.0, 600, 0.5)
    bucket.refill(0.5, 600, 0.5)
    assert bucket.budget() == 5
    bucket.reset(10.0)
    assert bucket.tokens == 0 and bucket.budget() == 0
    bucket.refill(10.0, 600, 0.5)
    assert bucket.budget() == 0
    bucket.refill(10.25, 600, 0.5)
    assert bucket.budget() == 2  # 2.5 accrued since the reset, nothing from before it


def test_time_going_backwards_accrues_nothing() -> None:
    bucket = TokenBucket()
    bucket.refill(10.0, 600, 0.5)
    bucket.refill(9.0, 600, 0.5)
    assert bucket.tokens == 0
    bucket.refill(9.5, 600, 0.5)
    assert bucket.budget() == 5


def test_spend_never_goes_negative() -> None:
    bucket = TokenBucket(tokens=2.5, at=0.0)
    bucket.spend(2)
    assert bucket.tokens == pytest.approx(0.5)
    bucket.spend(3)
    assert bucket.tokens == 0.0
