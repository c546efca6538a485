"""The observed admission rate and the ETA derived from it."""

from __future__ import annotations

import itertools
import random

import pytest

from waiting_room.core.eta import HALF_LIFE_SECONDS, ObservedRate, eta_moved, eta_seconds, rate_moved


def test_unknown_until_the_first_counted_tick() -> None:
    rate = ObservedRate()
    assert rate.per_minute is None
    rate.update(admitted=5, seconds=0.5, waiting_after=10)
    assert rate.per_minute == pytest.approx(600)


@pytest.mark.parametrize("tick", [0.5, 1.0, 2.0])
def test_converges_to_a_steady_rate(tick: float) -> None:
    rate = ObservedRate()
    rate.update(admitted=round(3000 / 60 * tick), seconds=tick, waiting_after=100)  # a fast start
    for _ in range(round(300 / tick)):
        rate.update(admitted=round(120 / 60 * tick), seconds=tick, waiting_after=100)
    assert rate.per_minute == pytest.approx(120, rel=1e-3)


@pytest.mark.parametrize("tick", [0.1, 0.25, 0.5, 1.0, 2.0])
def test_the_old_rate_weighs_half_after_one_half_life_whatever_the_tick(tick: float) -> None:
    """Long at 2400/min, then one half-life at 1200/min: halfway between, as an EWMA should be."""
    rate = ObservedRate()
    for _ in range(round(20 * HALF_LIFE_SECONDS / tick)):
        rate.update(admitted=round(2400 / 60 * tick), seconds=tick, waiting_after=1)
    for _ in range(round(HALF_LIFE_SECONDS / tick)):
        rate.update(admitted=round(1200 / 60 * tick), seconds=tick, waiting_after=1)
    assert rate.per_minute == pytest.approx(1800, rel=1e-5)


def test_a_first_tick_that_admits_nobody_does_not_drag_the_rate_down() -> None:
    """The opening tick often admits nobody (the bucket starts empty); ETAs must be right within seconds."""
    rate = ObservedRate()
    rate.update(admitted=0, seconds=0.5, waiting_after=200)
    for _ in range(20):  # 10 s at 120/min
        rate.update(admitted=1, seconds=0.5, waiting_after=200)
    assert rate.per_minute == pytest.approx(120, rel=0.1)


def test_moves_monotonically_toward_a_new_rate() -> None:
    rate = ObservedRate()
    rate.update(admitted=10, seconds=1, waiting_after=5)
    values = []
    for _ in range(400):
        rate.update(admitted=1, seconds=1, waiting_after=5)
        assert rate.per_minute is not None
        values.append(rate.per_minute)
    assert all(b < a for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(60, rel=1e-3)


def test_ticks_that_emptied_the_line_are_not_counted() -> None:
    rate = ObservedRate()
    rate.update(admitted=3, seconds=1, waiting_after=0)
    assert rate.per_minute is None
    rate.update(admitted=1, seconds=1, waiting_after=4)
    rate.update(admitted=3, seconds=1, waiting_after=0)
    rate.update(admitted=0, seconds=1, waiting_after=0)
    assert rate.per_minute == pytest.approx(60)


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_tick_without_elapsed_time_is_ignored(seconds: float) -> None:
    rate = ObservedRate(per_minute=60.0)
    rate.update(admitted=10, seconds=seconds, waiting_after=5)
    assert rate.per_minute == 60.0


def test_reset_forgets() -> None:
    rate = ObservedRate(per_minute=60.0)
    rate.reset()
    assert rate.per_minute is None


@pytest.mark.parametrize(
    ("position", "per_minute", "admitting"),
    [(5, 60.0, False), (None, 60.0, True), (5, 0.0, True), (5, 0.01, True), (5, -3.0, True)],
)
def test_no_eta_when_unknown(position: int | None, per_minute: float, admitting: bool) -> None:
    assert eta_seconds(position, per_minute, admitting) is None


@pytest.mark.parametrize(
    ("position", "per_minute", "expected"),
    [(1, 600.0, 1), (1, 60.0, 1), (2, 60.0, 2), (3, 40.0, 5), (11, 11.0, 60), (5, 100.0, 3), (600, 600.0, 60)],
)
def test_eta_rounds_up(position: int, per_minute: float, expected: int) -> None:
    assert eta_seconds(position, per_minute, True) == expected


def test_eta_is_the_smallest_whole_second_that_covers_the_position() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        position = rng.randrange(1, 100_000)
        per_minute = rng.randrange(1, 20_000)
        seconds = eta_seconds(position, float(per_minute), True)
        assert seconds is not None
        assert seconds * per_minute >= position * 60  # enough time for everyone ahead
        assert (seconds - 1) * per_minute < position * 60  # and not a second more


def test_an_exact_wait_is_not_rounded_up_a_second() -> None:
    for per_minute in range(1, 1000):
        for minutes in range(1, 20):
            assert eta_seconds(per_minute * minutes, float(per_minute), True) == 60 * minutes


def test_the_rate_stays_unknown_until_someone_is_admitted() -> None:
    """The opening tick often admits nobody while the bucket fills: that is no rate of zero."""
    rate = ObservedRate()
    rate.update(admitted=0, seconds=0.5, waiting_after=200)
    assert rate.per_minute is None
    assert eta_seconds(10, rate.per_minute or 0.0, True) is None
    rate.update(admitted=1, seconds=0.5, waiting_after=199)
    assert rate.per_minute == pytest.approx(120)


def test_an_eta_is_told_again_when_it_moved_by_a_fifth_and_ten_seconds() -> None:
    assert not eta_moved(100, 119) and eta_moved(100, 120) and eta_moved(100, 80)
    assert not eta_moved(20, 29) and eta_moved(20, 30)  # short waits: ten seconds, not a fifth
    assert eta_moved(None, 5) and eta_moved(5, None) and not eta_moved(None, None)


def test_a_rate_moved_when_every_eta_it_gives_moved_by_a_fifth() -> None:
    assert not rate_moved(60, 51) and rate_moved(60, 49)  # ETAs x1.18, x1.22
    assert rate_moved(60, 76) and not rate_moved(60, 74)  # ETAs x0.79, x0.81
    assert rate_moved(None, 60) and rate_moved(60, 0.0) and not rate_moved(None, 0.0)
    # a stalled line: the rate halves every half-life, so the ETAs are due again every few seconds
    stalled = [60 * 0.5 ** (t / HALF_LIFE_SECONDS) for t in range(0, 60)]
    told, pushes = stalled[0], 0
    for rate in stalled:
        if rate_moved(told, rate):
            told, pushes = rate, pushes + 1
    assert 60 // 7 <= pushes <= 60 // 5
