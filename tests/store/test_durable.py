"""WR_REDIS_MIN_REPLICAS against a real primary and replica: acknowledged means a replica holds it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from support.waiting import apoll, poll

from waiting_room.core.tokens import Claims
from waiting_room.promoter import Promoter
from waiting_room.store.durable import ReplicaShortfall
from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts

ISSUER = "http://waiting-room.test"


class Pair:
    def __init__(self, root: Path) -> None:
        self.primary = EmbeddedRedis(root / "primary")
        self.primary.start()
        with redis_sync.Redis(port=self.primary.port) as r:  # sync a replica at once; stop without waiting for it
            r.config_set("repl-diskless-sync-delay", 0)
            r.config_set("shutdown-timeout", 0)
        self.replica = EmbeddedRedis(root / "replica")
        self.start_replica()

    def start_replica(self) -> None:
        self.replica.start()
        with redis_sync.Redis(port=self.replica.port) as r:
            r.config_set("shutdown-timeout", 0)
            r.execute_command("REPLICAOF", "127.0.0.1", self.primary.port)
        poll(self.in_sync, "the replica to catch up")

    def in_sync(self) -> bool:
        with redis_sync.Redis(port=self.primary.port, decode_responses=True) as r:
            replica = r.info("replication").get("slave0")
            return isinstance(replica, dict) and replica.get("state") == "online"

    def on_replica(self, key: str, field: str) -> str | None:
        with redis_sync.Redis(port=self.replica.port, decode_responses=True) as r:
            value: str | None = r.hget(key, field)  # type: ignore[assignment]
            return value


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    made = Pair(tmp_path)
    yield made
    made.replica.kill()  # nothing to keep: no graceful shutdown (which may wait on a sync)
    made.primary.kill()


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[Redis]:
    redis: Redis = Redis.from_url(pair.primary.url, decode_responses=True)
    yield redis
    await redis.aclose()


async def test_a_confirmed_join_is_on_the_replica_and_a_shortfall_is_refused(
    pair: Pair, client: Redis, event_id: str
) -> None:
    await Events(client).put(event_id, {"status": "paused"})
    queue = Queue(client, Scripts.register(client, min_replicas=1), ISSUER)
    view, created = await queue.join(event_id, "u" * 20)
    assert created
    assert pair.on_replica(EventKeys(event_id).tickets, view.ticket) is not None  # there when we answered
    pair.replica.stop()
    with pytest.raises(ReplicaShortfall):
        await queue.join(event_id, "v" * 20)
    pair.start_replica()

    async def joined() -> bool:
        try:
            await queue.join(event_id, "w" * 20)
        except ReplicaShortfall:
            return False
        return True

    await apoll(joined, "joins to succeed again once the replica is back", within=20, interval=0.2)


async def test_a_redemption_refused_for_want_of_replicas_leaves_the_token_unspent(
    pair: Pair, client: Redis, event_id: str
) -> None:
    await Events(client).put(event_id, {"rate_per_minute": 6000})
    scripts = Scripts.register(client, min_replicas=1)
    queue = Queue(client, scripts, ISSUER)
    view, _ = await queue.join(event_id, "u" * 20)
    promoter = Promoter(client, scripts, 100)
    claims = await _admit(promoter, queue, view.ticket)
    pair.replica.stop()
    with pytest.raises(ReplicaShortfall):
        await queue.redeem(claims)
    pair.start_replica()
    assert (await queue.redeem(claims)).ticket == view.ticket  # the refused attempt did not spend it


async def _admit(promoter: Promoter, queue: Queue, ticket: str) -> Claims:
    async def admitted() -> Claims | None:
        await promoter.tick()
        view = await queue.status(ticket, touch=False)
        return view.claims if view is not None else None

    return await apoll(admitted, "the ticket to be admitted", within=20, interval=0.1)


async def test_the_promoter_announces_only_confirmed_admissions(pair: Pair, client: Redis, event_id: str) -> None:
    await Events(client).put(event_id, {"rate_per_minute": 6000})
    scripts = Scripts.register(client, min_replicas=1)
    queue = Queue(client, scripts, ISSUER)
    tickets = [(await queue.join(event_id, f"{i:020d}"))[0].ticket for i in range(3)]
    promoter = Promoter(client, scripts, 100)
    pubsub = client.pubsub()
    await pubsub.subscribe("wr:bus")
    pair.replica.stop()
    results = [await promoter.tick() for _ in range(3)]
    assert sum(r.admitted for tick in results for r in tick) == 0  # nothing reported as done
    assert await _advances(pubsub) == []  # nor announced
    pair.start_replica()
    await _admit(promoter, queue, tickets[-1])
    announced = [t for message in await _advances(pubsub) for t, *_ in message["admitted"]]
    assert sorted(announced) == sorted(tickets)  # each announced once, withheld ones included
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _advances(pubsub: PubSub) -> list[dict[str, Any]]:
    found = []
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is None:
            return found
        body = json.loads(message["data"])
        if body["type"] == "advance":
            found.append(body)
