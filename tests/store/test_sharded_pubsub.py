"""Sharded pub/sub against a real Redis Cluster: per-event shard channels, the global channel, failover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as AsyncCluster
from redis.exceptions import RedisError
from support.redis_cluster import RedisCluster
from support.waiting import apoll, until

from waiting_room.core import messages
from waiting_room.core.messages import BusMessage
from waiting_room.core.tickets import new_ticket
from waiting_room.store import keys
from waiting_room.store.keys import EventKeys
from waiting_room.store.redis_client import connect
from waiting_room.store.sharded_pubsub import ShardedBus, ShardedSubscriber


class Received:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.resubscribed = 0

    def on_message(self, data: str) -> None:
        self.messages.append(data)

    async def on_resubscribed(self) -> None:
        self.resubscribed += 1


@pytest.fixture
async def cluster_client(redis_cluster: RedisCluster) -> AsyncIterator[AsyncCluster]:
    client = cast(AsyncCluster, connect(redis_cluster.url))
    yield client
    await client.aclose()


async def started(client: AsyncCluster, received: Received) -> tuple[ShardedSubscriber, asyncio.Task[None]]:
    subscriber = ShardedSubscriber(client, received.on_message, received.on_resubscribed)
    task = asyncio.create_task(subscriber.run())
    await asyncio.wait_for(subscriber.ready.wait(), 10)
    return subscriber, task


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_each_event_is_heard_on_its_own_shard_and_notices_everywhere(
    redis_cluster: RedisCluster, cluster_client: AsyncCluster
) -> None:
    events = redis_cluster.events_on_distinct_primaries(f"sp{uuid4().hex[:6]}")
    received = Received()
    subscriber, task = await started(cluster_client, received)
    try:
        for event in events:
            await subscriber.add(event)
        owners = {redis_cluster.owner(EventKeys(e).bus).port for e in events}
        assert len(owners) == 3  # three shards, three subscribed connections
        for event in events:
            assert await cluster_client.execute_command("SPUBLISH", EventKeys(event).bus, f"to {event}") == 1
        assert await cluster_client.publish(keys.DEFAULT.bus, "to all") >= 1
        await until(lambda: len(received.messages) == 4, "one message per event and the notice")
        assert sorted(received.messages) == sorted([*(f"to {e}" for e in events), "to all"])
        # an event given up is no longer heard; the others still are
        await subscriber.remove(events[0])
        assert await cluster_client.execute_command("SPUBLISH", EventKeys(events[0]).bus, "gone") == 0
        await cluster_client.execute_command("SPUBLISH", EventKeys(events[1]).bus, "still")
        await until(lambda: "still" in received.messages, "a message on a kept event")
        assert "gone" not in received.messages
    finally:
        await stopped(task)


async def test_a_dead_primary_is_ridden_out_on_its_promoted_replica(
    redis_cluster: RedisCluster, cluster_client: AsyncCluster
) -> None:
    event = f"fo{uuid4().hex[:6]}"
    received = Received()
    subscriber, task = await started(cluster_client, received)
    try:
        await subscriber.add(event)
        channel = EventKeys(event).bus
        victim = redis_cluster.owner(channel)
        victim.kill()
        # the replica takes over; the subscriber subscribes again there and says so
        await until(lambda: received.resubscribed >= 2, "a new session after the failover", within=30)
        assert subscriber.ready.is_set()
        assert redis_cluster.owner(channel).port != victim.port

        async def published() -> bool:
            try:
                return bool(await cluster_client.execute_command("SPUBLISH", channel, "after failover"))
            except RedisError:  # the client may not know the new owner yet
                return False

        await apoll(published, "a subscriber on the new owner", within=30)
        await until(lambda: "after failover" in received.messages, "the message on the new owner")
    finally:
        await stopped(task)
        victim.start()
        redis_cluster.wait_healthy(60)


async def test_the_sharded_bus_resyncs_an_event_once_subscribed_and_routes_by_event(
    redis_cluster: RedisCluster, cluster_client: AsyncCluster
) -> None:
    event, other = redis_cluster.events_on_distinct_primaries(f"sb{uuid4().hex[:6]}", count=2)
    subscriber = cast(AsyncCluster, connect(redis_cluster.url))
    bus = ShardedBus(cast(Redis, cluster_client), cast(Redis, subscriber))
    delivered: list[BusMessage] = []
    resynced: list[str | None] = []

    async def resync(which: str | None) -> None:
        resynced.append(which)

    bus.start(delivered.append, resync)
    try:
        await asyncio.wait_for(bus.ready.wait(), 10)
        assert resynced == [None]  # the first session re-reads everything
        bus.subscribe_event(event)
        await until(lambda: event in resynced, "the event re-read once its channel is subscribed")
        ticket = new_ticket(event)
        await bus.publish(
            [
                messages.Claim(ticket, "c1"),
                messages.Claim(new_ticket(other), "c2"),  # an event this process holds no socket of
                messages.Notice(None, "n1", "info", "to every event", 1.0),
            ]
        )
        await until(lambda: len(delivered) == 2, "the event's claim and the global notice")
        await asyncio.sleep(0.3)
        assert {type(m).__name__ for m in delivered} == {"Claim", "Notice"}
        assert [m.ticket for m in delivered if isinstance(m, messages.Claim)] == [ticket]
        bus.unsubscribe_event(event)
        await until(lambda: event not in bus.subscriber.subscribed, "the event unsubscribed")
        await bus.publish([messages.Claim(new_ticket(event), "c3")])
        await asyncio.sleep(0.3)
        assert len(delivered) == 2
    finally:
        await bus.stop()
        await subscriber.aclose()
