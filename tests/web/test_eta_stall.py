"""A line stalled on capacity, against real processes: nobody moves, so no position changes, but the
observed rate decays and every true ETA grows. The socket is told the new ETA whenever it moved
materially, and what it is told agrees with the status call."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from support.cluster import Cluster, running
from support.waiting import poll, until
from support.ws import close_all

from waiting_room.core.eta import eta_moved

pytestmark = pytest.mark.usefixtures("deadline")

CAPACITY = 3
WAITING = 30


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("eta-stall"), webs=1, promoters=1) as made:
        yield made


async def test_the_eta_is_pushed_again_while_the_line_stalls_and_agrees_with_the_status_call(cluster: Cluster) -> None:
    c = cluster
    c.put_event("stall", status="paused", rate_per_minute=60, max_active=CAPACITY)
    tickets = [c.join("stall")["ticket"] for _ in range(CAPACITY + WAITING)]
    c.set_status("stall", "open")
    # the first few are admitted (and never redeem): capacity is full and the line stops
    poll(lambda: c.stats("stall")["admitted_pending"] == CAPACITY, "capacity to fill", within=30)
    last = tickets[-1]
    socket = await c.ws(last).connect()
    try:
        first = (await socket.wait_for("position")).data
        assert first["position"] == WAITING and first["eta_seconds"] is not None

        def etas() -> list[int]:
            return [int(m.data["eta_seconds"]) for m in socket.of("position")]

        def grown() -> bool:
            told = etas()
            return eta_moved(told[0], told[-1]) and told[-1] > told[0]

        await until(grown, lambda: f"the ETA pushed again, grown: {socket.of('position')}", within=60)
        told = [m.data for m in socket.of("position")]
        status = c.ticket(last)
        assert c.stats("stall")["admitted_pending"] == CAPACITY  # still stalled: nobody moved
        assert {m["position"] for m in told} == {WAITING} and status["position"] == WAITING
        pushed = etas()
        # each push was worth sending: the ETA had moved materially since the one before
        assert all(eta_moved(a, b) for a, b in itertools.pairwise(pushed)), told
        # and the last one is what the status call says, within what is worth a push
        assert status["eta_seconds"] >= pushed[-1] and not eta_moved(pushed[-1], status["eta_seconds"])
    finally:
        await close_all([socket])
