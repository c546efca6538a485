"""Where bus messages travel: one channel on a single Redis; on a cluster, each event's own shard channel.

On Redis Cluster a classic PUBLISH is copied to every node over the cluster
bus, so every message would cost every shard. An event's messages are
instead sent with SPUBLISH on a channel under the event's hash tag: only the
shard that owns the event carries them, and only the web processes holding
sockets for that event subscribe there (see `sharded_pubsub`). Notices to
every event are rare and stay on the one global channel (classic PUBLISH,
which a cluster delivers to subscribers on any node).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from waiting_room.store import keys
from waiting_room.store.keys import Keyspace
from waiting_room.store.redis_client import is_cluster


@dataclass(frozen=True)
class Channels:
    sharded: bool
    keyspace: Keyspace = keys.DEFAULT

    def of(self, event: str) -> str:
        """The channel that carries `event`'s messages."""
        return self.keyspace.event(event).bus if self.sharded else self.keyspace.bus

    def command(self) -> str:
        """The command that publishes an event's messages (what a script calls)."""
        return "SPUBLISH" if self.sharded else "PUBLISH"

    def queue(self, pipe: Any, event: str, message: str) -> None:
        """Queue an event's message in a pipeline or MULTI on the event's slot."""
        pipe.execute_command(self.command(), self.of(event), message)

    @classmethod
    def for_client(cls, redis: Redis, keyspace: Keyspace = keys.DEFAULT) -> Channels:
        return cls(is_cluster(redis), keyspace)

    async def publish_global(self, redis: Redis, message: str) -> None:
        await redis.publish(self.keyspace.bus, message)
