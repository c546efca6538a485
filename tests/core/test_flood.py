"""A socket's message budget: a burst is allowed, more than ten a second sustained is not."""

from __future__ import annotations

from waiting_room.core.flood import BURST, MESSAGES_PER_SECOND, MessageBudget


def sent(budget: MessageBudget, count: int, every: float, start: float = 0.0) -> int:
    """How many of `count` messages, one every `every` seconds, are within the budget."""
    return sum(budget.take(start + i * every) for i in range(count))


def test_a_burst_passes_then_a_flood_is_caught() -> None:
    budget = MessageBudget()
    assert sent(budget, int(BURST), 0.0) == BURST
    assert not budget.take(0.0)


def test_ten_a_second_for_ever_is_fine() -> None:
    assert sent(MessageBudget(), 10_000, 1 / MESSAGES_PER_SECOND) == 10_000


def test_a_little_more_than_ten_a_second_sustained_runs_out() -> None:
    budget = MessageBudget()
    allowed = sent(budget, 1_000, 1 / 12)  # 12 a second: 2 over, the burst lasts about 10 s
    assert BURST < allowed < 1_000


def test_the_budget_refills_after_a_pause() -> None:
    budget = MessageBudget()
    sent(budget, int(BURST), 0.0)
    assert not budget.take(0.0)
    assert sent(budget, int(BURST), 0.0, start=BURST / MESSAGES_PER_SECOND) == BURST
