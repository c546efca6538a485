"""Join batches on the wire: packed here and sent on a connection of their own.

redis-py's pipeline spends about 250 µs of CPU on every round trip, whatever
it carries: a connection checked out of the pool and back, a Command object
and an encoder pass per argument, a task for the write's timeout, a reset.
At a sale's opening that was more than the joins themselves cost. A join
batch is one EVALSHA per event (scripts.py), so it is packed in one pass
and sent on one connection the batcher keeps for itself: one batch is in
flight at a time, so one connection is all it needs. Connection errors are
retried with the client's own policy, as redis-py would (a join sent twice
is answered from its wr_uid the second time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

Arg = str | int


def pack(commands: Sequence[Sequence[Arg]]) -> bytes:
    """The commands in RESP, as one buffer."""
    out: list[bytes] = []
    for args in commands:
        out.append(b"*%d\r\n" % len(args))
        for arg in args:
            data = (arg if isinstance(arg, str) else str(arg)).encode()
            out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class Line:
    """A connection from `redis`'s pool, kept to send batches of commands and read their replies."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._conn: AbstractConnection | None = None

    async def run(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """One reply per command, in order; an error reply is returned as its ResponseError."""
        if self._conn is None:
            self._conn = await self.redis.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        conn = self._conn
        packed = pack(commands)

        async def send() -> list[Any]:
            # redis-py drops the connection on any error or cancellation while sending or reading, so
            # a reply left unread is never taken for the next batch's
            await conn.send_packed_command(packed, check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:  # that command's own error: the next reply follows
                    replies.append(exc)
            return replies

        async def failed(_: Exception) -> None:
            await conn.disconnect()

        replies: list[Any] = await conn.retry.call_with_retry(send, failed)
        return replies
