"""Writes acknowledged only once replicas hold them (WR_REDIS_MIN_REPLICAS, Redis `WAIT`).

Redis replicates asynchronously: a primary that dies a moment after a write
can take the write with it, and its promoted replica never heard of it.
`WAIT n timeout` sent on the connection that wrote blocks until `n`
replicas have acknowledged everything that connection wrote, or the timeout
passes; so each durable call sends its script and then `WAIT` on the same
connection of the node that owns the keys (one pipelined round trip), and a
shortfall raises `ReplicaShortfall`, which every caller answers as `503
unavailable` with Retry-After.

What a shortfall means: the write happened on the primary but no replica is
known to hold it. If the primary lives on, so does the write (a joiner who
retries gets the same ticket back; see docs/scaling.md for admissions and
redemptions); if it dies, the write may be gone, but nobody was told it was
made. While a node falls short, later writes to it are first checked with a
bare `WAIT` (`precheck`), so that the outage answers 503 without writing at
all, rather than piling up writes nobody confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import AskError, ClusterDownError, NoScriptError, RedisError, TryAgainError

from waiting_room.store.redis_client import is_cluster

WAIT_TIMEOUT_MS = 500  # how long a write waits for its replicas before it is answered 503
SHORT_MEMORY_SECONDS = 10.0  # after a shortfall, a node's writes are prechecked this long


MOVED = (AskError, ClusterDownError, TryAgainError)  # the slot is elsewhere now (or not yet anywhere)


class ReplicaShortfall(RedisError):
    """Fewer replicas than WR_REDIS_MIN_REPLICAS confirmed a write (or are there to confirm one)."""


@dataclass(frozen=True)
class Command:
    """One command for a node: `key` routes it (any key it touches), `args` is what is sent."""

    key: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Outcome:
    """One command's reply (or its error), and whether replicas confirmed it."""

    reply: Any
    confirmed: bool
    node: str


@dataclass
class Durability:
    redis: Redis
    replicas: int
    timeout_ms: int = WAIT_TIMEOUT_MS
    _short_since: dict[str, float] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    def node_of(self, key: str) -> str:
        """The node that owns `key` now ("" on a single Redis, where there is one)."""
        if not is_cluster(self.redis):
            return ""
        node = cast(RedisCluster, self.redis).get_node_from_key(key)
        return "" if node is None else str(node.name)

    def short(self, node: str) -> bool:
        since = self._short_since.get(node)
        return since is not None and time.monotonic() - since < SHORT_MEMORY_SECONDS

    async def send(self, commands: Sequence[Command], *, precheck: bool = False) -> list[Outcome]:
        """Send `commands` grouped by owning node, each group followed by WAIT on its connection.

        Errors come back in place of replies (a moved slot refreshes the topology first). A node
        already known to be short, or every node with `precheck`, is first asked a bare WAIT, and
        gets no command unless its replicas answer."""
        groups: dict[str, list[int]] = {}
        if is_cluster(self.redis):
            await cast(RedisCluster, self.redis).initialize()
        for i, command in enumerate(commands):
            groups.setdefault(self.node_of(command.key), []).append(i)
        results = await asyncio.gather(
            *(self._on_node(name, [commands[i] for i in idx], precheck) for name, idx in groups.items())
        )
        outcomes: list[Outcome | None] = [None] * len(commands)
        for idx, found in zip(groups.values(), results, strict=True):
            for i, outcome in zip(idx, found, strict=True):
                outcomes[i] = outcome
        # any other error may mean a failover (a node gone, a slot moved, a primary now a replica)
        troubled = any(
            isinstance(o.reply, Exception) and not isinstance(o.reply, ReplicaShortfall | NoScriptError)
            for o in outcomes
            if o is not None
        )
        if is_cluster(self.redis) and troubled:
            with contextlib.suppress(RedisError, OSError):  # a failover: learn who owns what now
                await cast(RedisCluster, self.redis).nodes_manager.initialize()
        return [o for o in outcomes if o is not None]

    async def script(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any], *, precheck: bool) -> Any:
        """Run one script durably: its reply, or its error, or ReplicaShortfall."""
        command = Command(keys[0], ("EVALSHA", script.sha, len(keys), *keys, *args))
        for attempt in (1, 2):
            (outcome,) = await self.send([command], precheck=precheck)
            if attempt == 1 and isinstance(outcome.reply, (NoScriptError, *MOVED)):
                if isinstance(outcome.reply, NoScriptError):
                    await script.registered_client.script_load(script.script)
                continue  # nothing was written: safe to send again
            if isinstance(outcome.reply, Exception):
                raise outcome.reply
            if not outcome.confirmed:
                raise ReplicaShortfall("the write was not confirmed by enough replicas in time")
            return outcome.reply
        raise ReplicaShortfall("the write could not be placed")

    async def _on_node(self, name: str, commands: list[Command], precheck: bool) -> list[Outcome]:
        if precheck or self.short(name):
            acked = (await self._wait_after(name, []))[-1]
            if isinstance(acked, Exception):
                return [Outcome(acked, False, name) for _ in commands]
            if int(acked) < self.replicas:
                self._short_since[name] = time.monotonic()
                error = ReplicaShortfall(f"fewer than {self.replicas} replicas of {name or 'Redis'} answer")
                return [Outcome(error, False, name) for _ in commands]
        replies = await self._wait_after(name, [c.args for c in commands])
        acked = replies.pop()
        confirmed = isinstance(acked, int) and acked >= self.replicas
        if confirmed:
            self._short_since.pop(name, None)
        else:
            self._short_since[name] = time.monotonic()
        return [Outcome(reply, confirmed, name) for reply in replies]

    async def _wait_after(self, name: str, args: list[tuple[Any, ...]]) -> list[Any]:
        """Send `args` then WAIT on one connection of node `name`; replies (errors in place) in order."""
        wait = ("WAIT", self.replicas, self.timeout_ms)
        if not is_cluster(self.redis):
            async with self.redis.pipeline(transaction=False) as pipe:
                for command in [*args, wait]:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
                return replies
        cluster = cast(RedisCluster, self.redis)
        node: ClusterNode | None = cluster.get_node(node_name=name)
        if node is None:
            return [RedisError(f"no node {name}")] * (len(args) + 1)
        queued = [PipelineCommand(i, *command) for i, command in enumerate([*args, wait])]
        try:
            await node.execute_pipeline(queued)
        except (RedisError, OSError) as exc:
            return [exc] * len(queued)
        return [c.result for c in queued]
