"""WebSocket clients that misbehave, against a real web process: a flood of messages is closed with
1008 while a chatty but polite client is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from support.cluster import Cluster, running
from support.ws import WsClient, close_all

pytestmark = pytest.mark.usefixtures("deadline")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("socket-abuse"), webs=1, promoters=1) as made:
        yield made


async def test_a_message_flood_is_closed_with_1008_and_a_polite_client_is_kept(cluster: Cluster) -> None:
    c = cluster
    c.put_event("flood", status="paused")
    flooders = [await c.ws(c.join("flood")["ticket"]).connect() for _ in range(4)]
    polite = await c.ws(c.join("flood")["ticket"]).connect()
    try:
        await asyncio.gather(*(s.wait_for("position") for s in [*flooders, polite]))

        async def flood(socket: WsClient) -> None:
            for _ in range(2_000):  # flat out; the server closes long before the end
                await socket.send("{}")

        await asyncio.gather(*(flood(s) for s in flooders))
        for _ in range(10):  # two a second: within the budget however long it goes on
            await polite.send('{"hello": 1}')
            await asyncio.sleep(0.5)
        assert [await s.closed() for s in flooders] == [1008] * len(flooders)
        assert polite.open
        await asyncio.to_thread(c.set_status, "flood", "open")
        await polite.wait_for("admitted")
    finally:
        await close_all([*flooders, polite])
