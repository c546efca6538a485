"""`waiting-room web --workers 2`: two processes on one port, as one web process to the outside."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Callable

import pytest
from support.cluster import Cluster
from support.redis_server import records
from support.waiting import poll, until
from support.ws import WsClient, close_all

from waiting_room.cli.web import WORKER_HEADER

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

SOCKETS = 24


def worker_pids(supervisor: int) -> list[int]:
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
        return [int(pid) for pid in f.read().split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def worker_of(client: WsClient, connection: int = -1) -> str:
    return client.handshakes[connection][WORKER_HEADER]


async def test_two_workers_share_a_port_admit_fifo_and_survive_losing_one(
    cluster_factory: Callable[..., Cluster], event_id: str
) -> None:
    c = cluster_factory(webs=1, promoters=1, workers=2)
    supervisor = c.webs[0]
    assert supervisor is not None
    c.put_event(event_id, status="paused", rate_per_minute=600)
    tickets = [c.join(event_id)["ticket"] for _ in range(SOCKETS)]
    clients = [c.ws(t) for t in tickets]
    await asyncio.gather(*(cl.connect() for cl in clients))
    try:
        await until(lambda: all(cl.of("position") for cl in clients), "a position on every socket")
        assert [cl.ranks()[0] for cl in clients] == list(range(1, SOCKETS + 1))
        spread = Counter(worker_of(cl) for cl in clients)
        assert sorted(spread) == ["1", "2"], f"every socket landed on one worker: {spread}"

        # kill one worker outright: its sockets drop, the other worker's stay open
        pids = worker_pids(supervisor.popen.pid)
        assert len(pids) == 2
        os.kill(pids[0], signal.SIGKILL)
        await until(lambda: any(not cl.open for cl in clients), "the killed worker's sockets to drop")
        await asyncio.sleep(0.5)  # every socket of the killed worker has noticed by now
        dropped = [cl for cl in clients if not cl.open]
        assert len({worker_of(cl) for cl in dropped}) == 1, "sockets of both workers dropped"
        assert all(cl.open for cl in clients if worker_of(cl) != worker_of(dropped[0]))

        # their holders reconnect (to the survivor or the replacement) and resume their place
        await asyncio.gather(*(cl.reconnect() for cl in dropped))
        await until(lambda: all(cl.of("position", 1) for cl in dropped), "a position on every reconnected socket")
        for cl in dropped:
            assert cl.ranks(1)[0] == cl.ranks(0)[0], f"{cl.ticket} lost its place"
        poll(lambda: len([p for p in worker_pids(supervisor.popen.pid) if alive(p)]) == 2, "a replacement worker")

        await asyncio.to_thread(c.set_status, event_id, "open")
        await until(lambda: all(cl.admitted for cl in clients), "every socket to be admitted", within=30)
    finally:
        await close_all(clients)
    assert [len(cl.of("admitted")) for cl in clients] == [1] * SOCKETS
    admitted_ms = [records(c.redis, event_id)[t].admitted_ms for t in tickets]
    assert admitted_ms == sorted(admitted_ms), "not admitted in join order"
    assert c.stats(event_id)["served_total"] == SOCKETS

    # SIGTERM to the supervisor alone stops every worker
    workers = worker_pids(supervisor.popen.pid)
    os.kill(supervisor.popen.pid, signal.SIGTERM)
    assert supervisor.popen.wait(15) == 0
    poll(lambda: not any(alive(p) for p in workers), "every worker to stop")


def test_ctrl_c_stops_every_worker(cluster_factory: Callable[..., Cluster]) -> None:
    """A terminal's Ctrl-C reaches the whole foreground group: supervisor and workers alike."""
    c = cluster_factory(webs=1, promoters=0, workers=3)
    supervisor = c.webs[0]
    assert supervisor is not None
    poll(lambda: len(worker_pids(supervisor.popen.pid)) == 3, "three workers")
    workers = worker_pids(supervisor.popen.pid)
    os.killpg(supervisor.popen.pid, signal.SIGINT)
    assert supervisor.popen.wait(15) == 0
    poll(lambda: not any(alive(p) for p in workers), "every worker to stop")
    assert "Traceback" not in supervisor.log()
