"""Calls that arrive together go to Redis together.

At a sale's opening thousands of joins arrive a second; one round trip each
is what bounds a web process (a connection from the pool, a write, a
wake-up per reply). The batcher sends the first call at once, on the next
turn of the event loop, and every call that arrives while a batch is in
flight waits for it and then goes in the next batch, through one `send`. So
an idle process adds no latency, and a busy one makes one round trip per
batch instead of per call. What a batch becomes in Redis is `send`'s
business (joins: one script run per event, scripts.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

MAX_BATCH = 256  # bounds one batch's size (and a reply's memory); more waiting go in the next one

T = TypeVar("T")

# Sends a batch; returns one reply per call, in order, each a value or the Exception that call raised.
Send = Callable[[list[T]], Awaitable[list[Any]]]


class Batcher(Generic[T]):
    def __init__(self, send: Send[T], max_batch: int = MAX_BATCH) -> None:
        self.send = send
        self.max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and benchmarks: how many batches went out

    @property
    def queued(self) -> int:
        """Calls waiting for the next batch (beyond the one in flight): how far Redis is behind."""
        return len(self._waiting)

    async def call(self, item: T) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                await self._send(batch)
        except BaseException:  # cancelled (the process is stopping): nobody will send the rest
            waiting, self._waiting = self._waiting, []
            for _, future in waiting:
                future.cancel()
            raise
        finally:
            self._flusher = None

    async def _send(self, batch: list[tuple[T, asyncio.Future[Any]]]) -> None:
        self.batches += 1
        try:
            replies = await self.send([item for item, _ in batch])
        except Exception as exc:  # Redis unreachable: every caller of the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller went away (client disconnected); the call ran all the same
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
