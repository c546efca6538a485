"""RedisBus on a real redis-server: typed delivery, junk skipped, and recovery after the subscription is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from support.waiting import until

from waiting_room.core import messages
from waiting_room.core.states import EventStatus
from waiting_room.store.bus import RedisBus
from waiting_room.store.keys import Keyspace

pytestmark = pytest.mark.usefixtures("deadline")


class Listener:
    def __init__(self) -> None:
        self.got: list[messages.BusMessage] = []
        self.resyncs: list[str | None] = []

    def deliver(self, message: messages.BusMessage) -> None:
        self.got.append(message)

    async def resync(self, event: str | None) -> None:
        self.resyncs.append(event)


@pytest.fixture
async def bus(keyspace: Keyspace, redis_factory: Callable[[], Redis]) -> AsyncIterator[tuple[RedisBus, Listener]]:
    listener = Listener()
    bus = RedisBus(redis_factory(), redis_factory(), keyspace)
    bus.start(listener.deliver, listener.resync)
    await until(bus.ready.is_set, "the bus to subscribe")
    yield bus, listener
    await bus.stop()


async def test_messages_arrive_typed_and_junk_is_skipped(
    keyspace: Keyspace, bus: tuple[RedisBus, Listener], redis: Redis
) -> None:
    redis_bus, listener = bus
    for junk in ["not json", "[1, 2]", '{"type": "advance", "event": "x"}', '{"type": "from-the-future"}']:
        await redis.publish(keyspace.bus, junk)
    sent = [messages.StateChange("demo", EventStatus.PAUSED), messages.Claim("demo." + "A" * 24, "c1")]
    await redis_bus.publish(sent)
    await until(lambda: len(listener.got) >= 2, "the two messages")
    assert listener.got == sent
    assert listener.resyncs == [None]


async def test_a_lost_subscription_comes_back_and_resyncs(bus: tuple[RedisBus, Listener], redis: Redis) -> None:
    redis_bus, listener = bus
    await redis.client_kill_filter(_type="pubsub")
    await until(lambda: len(listener.resyncs) == 2 and redis_bus.ready.is_set(), "a resubscription and a resync")
    notice = messages.Notice(None, "n1", "info", "back", 1.0)
    await redis_bus.publish([notice])
    await until(lambda: notice in listener.got, "a message after the resubscription")
