"""Sharded pub/sub on Redis Cluster: the shard channels of the events this process holds sockets for.

`ShardedBus` is store/bus.py's RedisBus for a cluster: the hub's
`subscribe_event` / `unsubscribe_event` become SSUBSCRIBE / SUNSUBSCRIBE on
the shard owning the event, and once an event is subscribed its sockets are
re-read (`resync(event)`), since whatever was published before is not heard.
`ShardedSubscriber` below is the connection work under it.

One subscribed connection per node that owns at least one of those events
(SSUBSCRIBE must reach the owner of the channel's slot), plus the classic
global channel on one of them. Events are added and removed as rooms appear
and disappear; `add` returns once the subscription is in place, so a caller
that reads Redis afterwards misses nothing published after its read.

redis-py's ClusterPubSub does this too, but polls its node connections one
after another with a timeout each (a quiet node delays a busy one), and
learns of a failover only through another client's MOVED. Here every node
has its own reader task, and any trouble (a connection lost, a node that
stops serving a slot and drops our subscription) ends the whole session:
the topology is read afresh, everything is subscribed again on the current
owners, and `on_resubscribed` runs so the caller re-reads what it may have
missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from waiting_room.core.messages import BusMessage
from waiting_room.store import keys
from waiting_room.store.bus import Deliver, RedisBus, Resync, _cancel
from waiting_room.store.channels import Channels
from waiting_room.store.keys import Keyspace
from waiting_room.store.redis_client import execute

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT = 5.0


class SubscriptionLost(RedisError):
    """A node dropped one of our subscriptions (its slot moved): subscribe again on the new owner."""


class ShardedSubscriber:
    def __init__(
        self,
        cluster: RedisCluster,
        on_message: Callable[[str], None],
        on_resubscribed: Callable[[], Awaitable[None]],
        keyspace: Keyspace = keys.DEFAULT,
    ) -> None:
        self.cluster = cluster
        self.keyspace = keyspace
        self.on_message = on_message
        self.on_resubscribed = on_resubscribed
        self.wanted: set[str] = set()
        self.ready = asyncio.Event()
        self._subscribed: set[str] = set()
        self._nodes: dict[str, tuple[Redis, PubSub, asyncio.Task[None]]] = {}
        self._lock = asyncio.Lock()
        self._failed: asyncio.Future[None] | None = None
        self._confirmations: dict[str, asyncio.Future[None]] = {}

    # --- what the caller wants ------------------------------------------

    @property
    def subscribed(self) -> set[str]:
        """The events whose channel is subscribed now."""
        return set(self._subscribed)

    async def add(self, event: str) -> None:
        """Subscribe to `event`'s channel; returns once subscribed (or at once while reconnecting:
        the next session subscribes it and calls `on_resubscribed`)."""
        self.wanted.add(event)
        if event in self._subscribed or not self.ready.is_set():
            return
        async with self._lock:
            if event in self.wanted and event not in self._subscribed and self.ready.is_set():
                try:
                    await self._subscribe(event)
                except (RedisError, OSError, TimeoutError) as exc:
                    self._fail(exc)

    async def remove(self, event: str) -> None:
        self.wanted.discard(event)
        async with self._lock:
            if event in self._subscribed and event not in self.wanted:
                self._subscribed.discard(event)
                channel = self.keyspace.event(event).bus
                with contextlib.suppress(RedisError, OSError, KeyError):
                    _, pubsub, _ = self._nodes[self._owner(channel)]
                    await pubsub.sunsubscribe(channel)

    # --- sessions --------------------------------------------------------

    async def run(self) -> None:
        """Forever: subscribe everything wanted, deliver messages, start over after any trouble."""
        backoff = 0.1
        try:
            while True:
                try:
                    await self._session()
                except (RedisError, OSError, TimeoutError) as exc:
                    log.warning("sharded subscription lost (%s); subscribing again in %.1f s", exc, backoff)
                if self.ready.is_set():  # it had worked: the next try comes quickly
                    backoff = 0.1
                self.ready.clear()
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                with contextlib.suppress(RedisError, OSError):
                    await self.cluster.nodes_manager.initialize()  # where every slot lives now
        finally:
            self.ready.clear()
            await asyncio.shield(self._close())

    async def _session(self) -> None:
        await self.cluster.initialize()
        self._failed = asyncio.get_running_loop().create_future()
        async with self._lock:
            pubsub = await self._pubsub(self._owner(self.keyspace.bus))
            await pubsub.subscribe(self.keyspace.bus)
            for event in sorted(self.wanted):
                await self._subscribe(event)
            self.ready.set()
        await self.on_resubscribed()
        await self._failed

    async def _close(self) -> None:
        self._subscribed.clear()
        self._confirmations.clear()
        nodes, self._nodes = self._nodes, {}
        for client, pubsub, reader in nodes.values():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await client.aclose()

    def _fail(self, exc: BaseException) -> None:
        if self._failed is not None and not self._failed.done():
            self._failed.set_exception(exc)
        for confirmed in self._confirmations.values():  # nobody waits out a subscription that will not come
            if not confirmed.done():
                confirmed.set_exception(SubscriptionLost(str(exc)))

    # --- nodes -----------------------------------------------------------

    def _owner(self, channel: str) -> str:
        node = self.cluster.get_node_from_key(channel)
        if node is None:
            raise SubscriptionLost(f"no node serves {channel}")
        return str(node.name)

    async def _subscribe(self, event: str) -> None:
        channel = self.keyspace.event(event).bus
        pubsub = await self._pubsub(self._owner(channel))
        confirmed = self._confirmations[channel] = asyncio.get_running_loop().create_future()
        await pubsub.ssubscribe(channel)
        # in place only once the node says so: a read the caller makes next must not overtake it
        await asyncio.wait_for(confirmed, SUBSCRIBE_TIMEOUT)
        self._subscribed.add(event)

    async def _pubsub(self, name: str) -> PubSub:
        if name not in self._nodes:
            host, _, port = name.rpartition(":")
            client = Redis(
                host=host,
                port=int(port),
                decode_responses=True,
                socket_connect_timeout=2.0,
                health_check_interval=15,
                # no quiet reconnect: it would subscribe again on the same node, which may no
                # longer own the slot (or be a replica now); a new session asks who does
                retry=Retry(NoBackoff(), 0),
            )
            pubsub = client.pubsub()
            reader = asyncio.create_task(self._read(pubsub))
            self._nodes[name] = (client, pubsub, reader)
        return self._nodes[name][1]

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while True:
                if not pubsub.subscribed:  # nothing sent yet: get_message would return at once
                    await asyncio.sleep(0.05)
                    continue
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    def _deliver(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("message", "smessage"):
            self.on_message(message["data"])
        elif kind == "ssubscribe":
            confirmed = self._confirmations.pop(str(message["channel"]), None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == "sunsubscribe":
            event = str(message["channel"]).partition("{")[2].partition("}")[0]
            if event in self.wanted and event in self._subscribed:  # not ours: the node gave up the slot
                self._fail(SubscriptionLost(f"{message['channel']} was dropped by its node"))


class ShardedBus:
    """RedisBus's interface (web/hub.py's `Bus`) over sharded pub/sub."""

    def __init__(self, redis: Redis, subscriber: Redis, keyspace: Keyspace = keys.DEFAULT) -> None:
        self.redis = redis  # publishes
        self.channels = Channels(True, keyspace)
        cluster = cast(RedisCluster, subscriber)
        self.subscriber = ShardedSubscriber(cluster, self._on_raw, self._on_resubscribed, keyspace)
        self.ready = self.subscriber.ready  # subscribed (and resynced) now
        self._deliver: Deliver | None = None
        self._resync: Resync | None = None
        self._task: asyncio.Task[None] | None = None
        self._changes: set[asyncio.Task[None]] = set()

    def start(self, deliver: Deliver, resync: Resync) -> None:
        self._deliver, self._resync = deliver, resync
        self._task = asyncio.create_task(self.subscriber.run())

    async def stop(self) -> None:
        for task in list(self._changes):
            await _cancel(task)
        await _cancel(self._task)

    def subscribe_event(self, event: str) -> None:
        self._change(self._subscribe(event))

    def unsubscribe_event(self, event: str) -> None:
        self._change(self.subscriber.remove(event))

    async def publish(self, batch: Sequence[BusMessage]) -> None:
        per_event = [m for m in batch if m.event is not None]
        if per_event:

            def build(pipe: Any) -> None:
                for message in per_event:
                    self.channels.queue(pipe, str(message.event), message.encode())

            await execute(self.redis, build, transaction=False)
        for message in batch:
            if message.event is None:
                await self.channels.publish_global(self.redis, message.encode())

    def _change(self, change: Awaitable[None]) -> None:
        task = asyncio.ensure_future(change)
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)

    async def _subscribe(self, event: str) -> None:
        await self.subscriber.add(event)
        if event in self.subscriber.subscribed and self._resync is not None:
            with contextlib.suppress(RedisError, OSError):  # a later session resyncs everything anyway
                await self._resync(event)

    def _on_raw(self, data: str) -> None:
        if self._deliver is not None:
            RedisBus._decode(data, self._deliver)

    async def _on_resubscribed(self) -> None:
        if self._resync is not None:
            await self._resync(None)
