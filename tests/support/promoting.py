"""Driving a Promoter by hand (one tick at a time) and recording what it publishes on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from waiting_room.core import messages
from waiting_room.promoter import Promoter, TickResult

from .waiting import until


async def ticks(promoter: Promoter, n: int) -> list[list[TickResult]]:
    """`n` ticks a tick apart (the token bucket fills with time, so ticks back to back admit nothing)."""
    results = []
    for _ in range(n):
        await asyncio.sleep(promoter.tick_seconds)
        results.append(await promoter.tick())
    return results


async def tick_until(
    promoter: Promoter,
    done: Callable[[], Awaitable[bool]],
    what: str,
    within: float = 20.0,
    after_each: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Tick until `done()`; `after_each` runs after every tick (to check an invariant each time)."""
    deadline = time.monotonic() + within
    while not await done():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s of ticks waiting for {what}")
        await asyncio.sleep(promoter.tick_seconds)
        await promoter.tick()
        if after_each is not None:
            await after_each()


def max_in_window(times_ms: list[int], window_ms: int) -> int:
    """The most admissions within any `window_ms`, by the admission times the promote script recorded."""
    ordered = sorted(times_ms)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window_ms:
            start += 1
        best = max(best, end - start + 1)
    return best


@contextlib.asynccontextmanager
async def running(promoter: Promoter) -> AsyncIterator[Promoter]:
    """The promoter's own loop, as `waiting-room promoter` runs it, until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(promoter.run(stop))
    try:
        yield promoter
    finally:
        stop.set()
        await task


class BusRecorder:
    """Every message published on `channel` while open, in order."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self.channel = channel
        self.pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=True)
        self.messages: list[messages.BusMessage] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BusRecorder:
        await self.pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read(self) -> None:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                parsed = messages.parse(message["data"])  # the one reader of the bus; raises if malformed
                assert parsed is not None, f"a bus message of an unknown type: {message['data']}"
                self.messages.append(parsed)

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        """Until the recorded messages satisfy `predicate` (publish to deliver is asynchronous)."""
        await until(predicate, what)

    def advances(self, event: str) -> list[messages.Advance]:
        return [m for m in self.messages if isinstance(m, messages.Advance) and m.event == event]

    def admitted(self, event: str) -> list[str]:
        """Admitted tickets in the order the promoter admitted them."""
        return [a.ticket for m in self.advances(event) for a in m.admitted]

    def batches(self, event: str) -> list[list[str]]:
        return [[a.ticket for a in m.admitted] for m in self.advances(event) if m.admitted]
