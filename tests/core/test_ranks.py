"""Rank arithmetic against a simulated line: the pushed position is honest."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from waiting_room.core.ranks import PositionTracker, estimate


@pytest.mark.parametrize(
    ("rank", "served_at_rank", "served_now", "expected"),
    [
        (0, 0, 0, 1),
        (9, 0, 0, 10),
        (9, 100, 104, 6),
        (9, 100, 109, 1),
        (9, 100, 500, 1),  # admissions beyond the rank never give a position below 1
        (9, 100, 90, 10),  # a served count older than the read does not raise the estimate
    ],
)
def test_estimate(rank: int, served_at_rank: int, served_now: int, expected: int) -> None:
    assert estimate(rank, served_at_rank, served_now) == expected


def test_tracker_without_a_rank_has_no_position() -> None:
    tracker = PositionTracker()
    assert tracker.position(5) is None
    assert tracker.take(5) is None
    assert tracker.sent is None


def test_take_returns_none_while_unchanged() -> None:
    tracker = PositionTracker()
    tracker.observe(rank=4, served=10)
    assert tracker.take(10) == 5
    assert tracker.take(10) is None
    tracker.observe(rank=4, served=10)
    assert tracker.take(10) is None
    assert tracker.take(12) == 3
    assert tracker.take(12) is None


def test_exact_read_can_lower_but_never_raise_the_pushed_value() -> None:
    tracker = PositionTracker()
    tracker.observe(rank=9, served=0)
    assert tracker.take(0) == 10
    tracker.observe(rank=3, served=0)  # six ahead left without admission
    assert tracker.take(0) == 4
    tracker.observe(rank=7, served=0)  # a stale read arriving late
    assert tracker.position(0) == 4
    assert tracker.take(0) is None


@dataclass
class Line:
    """A plain-Python event line: admission from the head, removals anywhere, joins at the tail."""

    rng: random.Random
    tickets: list[int] = field(default_factory=list)
    served: int = 0
    next_id: int = 0

    def join(self, count: int) -> list[int]:
        new = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        self.tickets.extend(new)
        return new

    def admit(self, count: int) -> None:
        count = min(count, len(self.tickets))
        del self.tickets[:count]
        self.served += count

    def remove_some(self, count: int) -> None:
        for _ in range(min(count, len(self.tickets))):
            self.tickets.pop(self.rng.randrange(len(self.tickets)))

    def truth(self, ticket: int) -> int:
        return self.tickets.index(ticket) + 1


@pytest.mark.parametrize("seed", range(40))
def test_pushed_position_is_honest_under_random_traffic(seed: int) -> None:
    rng = random.Random(seed)
    line = Line(rng)
    line.join(rng.randrange(0, 50))
    trackers: dict[int, PositionTracker] = {}
    pushed: dict[int, list[int]] = {}
    delayed: list[tuple[int, int, int, int]] = []  # (apply at step, ticket, rank, served)
    observe_every = rng.choice([1, 3, 10, 40])
    for step in range(300):
        for ticket in line.join(rng.choice([0, 0, 1, 2, 5])):
            trackers[ticket] = PositionTracker()
            pushed[ticket] = []
        line.admit(rng.choice([0, 1, 1, 2, 3, 8]))
        line.remove_some(rng.choice([0, 0, 0, 1, 2]))
        for ticket in list(trackers):
            if ticket not in line.tickets:
                del trackers[ticket]
                continue
            tracker = trackers[ticket]
            fresh = tracker.rank is None or rng.randrange(observe_every) == 0
            if fresh:
                tracker.observe(line.tickets.index(ticket), line.served)
                # an exact read applied at once is the truth (the pushed value is never below it)
                assert tracker.position(line.served) == line.truth(ticket)
            elif rng.randrange(8) == 0:
                # a read taken now but applied some steps later (a slow refresh slice)
                delayed.append((step + rng.randrange(1, 6), ticket, line.tickets.index(ticket), line.served))
        for item in [d for d in delayed if d[0] == step]:
            delayed.remove(item)
            _, ticket, rank, served = item
            if ticket in trackers:
                trackers[ticket].observe(rank, served)
        for ticket, tracker in trackers.items():
            truth = line.truth(ticket)
            current = tracker.position(line.served)
            assert current is not None and current >= truth
            value = tracker.take(line.served)
            history = pushed[ticket]
            if value is None:
                assert history and history[-1] == current
            else:
                assert value >= truth
                assert not history or value < history[-1]
                history.append(value)
    assert any(len(h) > 1 for h in pushed.values())
