"""Rank arithmetic against a simulated line: exact when no change is missed, never below the truth."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from waiting_room.core.ranks import LOG_SIZE, LineChange, LineLog, PositionTracker, order


@pytest.mark.parametrize(
    ("rank", "score", "popped", "gone", "expected"),
    [
        (9, 100, 0, (), 9),
        (9, 100, 4, (), 5),
        (9, 100, 0, (50, 99), 7),  # two removed ahead
        (9, 100, 0, (101, 500), 9),  # removed behind: no change
        (9, 100, 2, (10, 200), 6),
        (3, 100, 10, (), 0),  # never below the head
    ],
)
def test_rank_after_a_change(rank: int, score: int, popped: int, gone: tuple[int, ...], expected: int) -> None:
    assert LineChange.of(1, popped, gone).rank_after(rank, score) == expected


def test_a_change_takes_order_scores_in_any_spelling_and_sorts_them() -> None:
    change = LineChange.of(7, 2, ["1099511627790", 5.0, 1099511627778])
    assert change == LineChange(7, 2, (5, 1099511627778, 1099511627790))
    assert order("1.099511627777e+12") == 1099511627777


def test_tracker_without_a_rank_has_no_position() -> None:
    tracker = PositionTracker()
    tracker.apply(LineChange(1, popped=3))
    assert tracker.position() is None and tracker.take() is None and tracker.seq == 1


def test_a_change_is_applied_once_and_never_one_older_than_the_read() -> None:
    tracker = PositionTracker()
    tracker.observe(rank=9, score=100, seq=5)
    tracker.apply(LineChange(5, popped=3))  # already in the read
    assert tracker.take() == 10
    tracker.apply(LineChange(6, popped=3))
    tracker.apply(LineChange(6, popped=3))  # heard twice
    assert tracker.take() == 7
    assert tracker.take() is None


def test_a_fresh_read_can_lower_but_never_raise_the_pushed_value() -> None:
    tracker = PositionTracker()
    tracker.observe(rank=9, score=100, seq=1)
    assert tracker.take() == 10
    tracker.observe(rank=3, score=100, seq=2)
    assert tracker.take() == 4
    tracker.observe(rank=7, score=100, seq=3)  # cannot happen with a real line; still never pushed up
    assert tracker.position() == 4 and tracker.take() is None


def test_the_log_catches_up_a_read_that_crossed_messages_and_reports_gaps() -> None:
    log = LineLog()
    assert log.add(LineChange(11, popped=1))
    assert log.add(LineChange(12, popped=2))
    assert not log.add(LineChange(12, popped=2)), "old news"
    early = PositionTracker()
    early.observe(rank=20, score=100, seq=10)  # the read was answered before 11 and 12 were published
    assert log.catch_up(early) and early.rank == 17 and early.seq == 12
    late = PositionTracker()
    late.observe(rank=20, score=100, seq=12)
    assert log.catch_up(late) and late.rank == 20
    missed = PositionTracker()
    missed.observe(rank=20, score=100, seq=8)  # 9 and 10 never heard
    assert not log.catch_up(missed)
    assert missed.rank == 17, "what was heard still applies (it only removes tickets ahead)"
    assert log.add(LineChange(14, popped=1))  # 13 lost on the way
    assert not log.catch_up(early) and early.rank == 16


def test_a_tracker_one_change_behind_takes_the_last_however_long_the_log() -> None:
    log = LineLog()
    for seq in range(1, LOG_SIZE + 1):
        log.add(LineChange(seq, popped=1))
    tracker = PositionTracker()
    tracker.observe(rank=500, score=1, seq=LOG_SIZE - 1)
    assert log.catch_up(tracker) and tracker.rank == 499 and tracker.seq == LOG_SIZE
    assert log.catch_up(tracker) and tracker.rank == 499, "nothing new: nothing applied"


def test_the_log_is_bounded() -> None:
    log = LineLog()
    for seq in range(1, LOG_SIZE * 2):
        log.add(LineChange(seq, popped=1))
    assert len(log.changes) == LOG_SIZE and log.latest == LOG_SIZE * 2 - 1
    stale = PositionTracker()
    stale.observe(rank=10_000, score=1, seq=1)
    assert not log.catch_up(stale), "older than the log: read again"


@dataclass
class Line:
    """A plain-Python event line: admission from the head, removals anywhere, joins at the tail."""

    rng: random.Random
    tickets: dict[int, int] = field(default_factory=dict)  # ticket -> order score
    next_score: int = 1_000
    seq: int = 0

    def ordered(self) -> list[int]:
        return sorted(self.tickets, key=self.tickets.__getitem__)

    def join(self, count: int) -> list[int]:
        new = []
        for _ in range(count):
            self.next_score += self.rng.randrange(1, 4)
            new.append(self.next_score)
            self.tickets[self.next_score] = self.next_score
        return new

    def advance(self, admit: int, remove: int) -> LineChange:
        line = self.ordered()
        gone = self.rng.sample(line, min(remove, len(line)))
        for ticket in gone:
            del self.tickets[ticket]
        popped = self.ordered()[:admit]
        for ticket in popped:
            del self.tickets[ticket]
        self.seq += 1
        return LineChange.of(self.seq, len(popped), [str(g) for g in gone])

    def rank(self, ticket: int) -> int:
        return self.ordered().index(ticket)


@pytest.mark.parametrize("seed", range(40))
def test_positions_from_the_bus_are_exact_unless_a_change_is_missed_and_never_below_the_truth(seed: int) -> None:
    rng = random.Random(seed)
    line = Line(rng)
    line.join(rng.randrange(0, 60))
    log = LineLog()
    trackers: dict[int, PositionTracker] = {}
    pushed: dict[int, list[int]] = {}
    delayed: list[tuple[int, int, int, int]] = []  # (apply at step, ticket, rank, seq): a read answered late
    drop = rng.choice([0.0, 0.0, 0.05, 0.3])
    for step in range(300):
        for ticket in line.join(rng.choice([0, 0, 1, 2, 5])):
            trackers[ticket] = PositionTracker()
            pushed[ticket] = []
            delayed.append((step + rng.randrange(0, 4), ticket, line.rank(ticket), line.seq))
        change = line.advance(rng.choice([0, 1, 1, 2, 3, 8]), rng.choice([0, 0, 0, 1, 2, 5]))
        heard = rng.random() >= drop
        if heard:
            log.add(change)
        stale: set[int] = set()
        for item in [d for d in delayed if d[0] <= step]:
            delayed.remove(item)
            _, ticket, rank, seq = item
            if ticket in trackers:
                trackers[ticket].observe(rank, ticket, seq)
        for ticket in list(trackers):
            if ticket not in line.tickets:
                del trackers[ticket]
                continue
            tracker = trackers[ticket]
            if tracker.rank is None:
                continue
            if not log.catch_up(tracker):
                stale.add(ticket)
            truth = line.rank(ticket) + 1
            current = tracker.position()
            assert current is not None and current >= truth
            if not drop and not any(d[1] == ticket for d in delayed):
                assert tracker.rank == truth - 1, "every change heard: exact"
            value = tracker.take()
            history = pushed[ticket]
            if value is not None:
                assert not history or value < history[-1]
                history.append(value)
        for ticket in stale:  # the hub reads these again, in one batch
            trackers[ticket].observe(line.rank(ticket), ticket, line.seq)
            assert trackers[ticket].position() == line.rank(ticket) + 1
    assert any(len(h) > 1 for h in pushed.values())
