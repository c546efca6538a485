"""The bus: how the processes' messages reach a web process's hub, typed (core/messages.py).

`RedisBus` is one pub/sub subscription per web process, on its own
connection (a subscribed connection can do nothing else), with recovery:
when the subscription is lost it subscribes again with backoff, and calls
`resync` first, because whatever was published meanwhile is gone. Raw
messages are decoded here, once; a malformed one is logged and skipped.

`MemoryBus` has the same interface without Redis, for the hub's tests.

The hub calls `subscribe_event` / `unsubscribe_event` as its rooms appear
and disappear. With one global channel they have nothing to do; a bus for
Redis Cluster's sharded pub/sub (one channel per event, SSUBSCRIBE on the
event's shard) would subscribe there and call `resync(event)` once it has,
without any change to the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from waiting_room.core import messages
from waiting_room.core.messages import BusMessage
from waiting_room.store import keys
from waiting_room.store.keys import Keyspace

log = logging.getLogger(__name__)

Deliver = Callable[[BusMessage], None]
Resync = Callable[[str | None], Awaitable[None]]  # event, or None for every event


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """redis-py can swallow a cancel that lands while it sets up a connection, and the loop then goes on:
    cancel again until the task has really ended, or shutdown hangs."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


class RedisBus:
    def __init__(self, redis: Redis, subscriber: Redis, keyspace: Keyspace = keys.DEFAULT) -> None:
        self.redis = redis  # publishes
        self.subscriber = subscriber  # its own connection, subscribed
        self.channel = keyspace.bus
        self.ready = asyncio.Event()  # subscribed (and resynced) now
        self._task: asyncio.Task[None] | None = None

    def start(self, deliver: Deliver, resync: Resync) -> None:
        self._task = asyncio.create_task(self._listen(deliver, resync))

    async def stop(self) -> None:
        await _cancel(self._task)

    def subscribe_event(self, event: str) -> None:
        """Every event's messages come on the one channel."""

    def unsubscribe_event(self, event: str) -> None:
        """Every event's messages come on the one channel."""

    async def publish(self, batch: Sequence[BusMessage]) -> None:
        if not batch:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for message in batch:
                pipe.publish(self.channel, message.encode())
            await pipe.execute()

    async def _listen(self, deliver: Deliver, resync: Resync) -> None:
        backoff = 0.1
        while True:
            pubsub = self.subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await resync(None)
                self.ready.set()
                backoff = 0.1
                while True:
                    raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if raw is not None:
                        self._decode(raw["data"], deliver)
            except (RedisError, OSError) as exc:
                self.ready.clear()
                log.warning("bus subscription lost (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    @staticmethod
    def _decode(data: str | bytes, deliver: Deliver) -> None:
        """A malformed message (another version, another publisher) is logged, never fatal to the fan-out."""
        try:
            message = messages.parse(data)
        except messages.MalformedMessage:
            log.warning("ignoring a malformed bus message: %.200r", data)
            return
        if message is not None:  # a type this version does not know
            deliver(message)


class MemoryBroker:
    """What Redis pub/sub is to RedisBus, in memory: every started MemoryBus of the broker hears it."""

    def __init__(self) -> None:
        self.buses: list[MemoryBus] = []

    def bus(self) -> MemoryBus:
        return MemoryBus(self)

    def publish(self, message: BusMessage) -> None:
        for bus in self.buses:
            bus.offer(message)


class MemoryBus:
    """RedisBus's interface in memory. Delivery is asynchronous, as over a network, and only for events
    subscribed (as a sharded bus would): a test that the hub keeps its subscriptions right."""

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()
        self.ready = asyncio.Event()
        self.events: set[str] = set()
        self._deliver: Deliver | None = None
        self._resync: Resync | None = None
        self._task: asyncio.Task[None] | None = None
        self._listening = False  # subscribed: from here on nothing is lost (ready once resynced, too)

    def start(self, deliver: Deliver, resync: Resync) -> None:
        self._deliver, self._resync = deliver, resync
        self.broker.buses.append(self)
        self._task = asyncio.create_task(self._subscribed())

    async def stop(self) -> None:
        if self in self.broker.buses:
            self.broker.buses.remove(self)
        self.ready.clear()
        self._listening = False
        await _cancel(self._task)

    def subscribe_event(self, event: str) -> None:
        self.events.add(event)

    def unsubscribe_event(self, event: str) -> None:
        self.events.discard(event)

    async def publish(self, batch: Sequence[BusMessage]) -> None:
        for message in batch:
            self.broker.publish(message)

    def offer(self, message: BusMessage) -> None:
        deliver = self._deliver
        if deliver is None or not self._listening:
            return  # not subscribed: lost, as pub/sub loses it
        if message.event is not None and message.event not in self.events:
            return
        asyncio.get_running_loop().call_soon(deliver, message)

    async def reconnect(self) -> None:
        """As after a lost subscription: whatever is published until resubscribed is lost, then resync."""
        self.ready.clear()
        self._listening = False
        await _cancel(self._task)
        self._task = asyncio.create_task(self._subscribed())
        await self.ready.wait()

    async def _subscribed(self) -> None:
        assert self._resync is not None
        self._listening = True
        await self._resync(None)
        self.ready.set()
