"""Script calls that arrive together go to Redis together.

At a sale's opening thousands of joins arrive a second; one EVALSHA round
trip each is what bounds a web process (a connection from the pool, a write,
a wake-up per reply). The batcher sends the first call at once, on the next
turn of the event loop, and every call that arrives while a batch is in
flight waits for it and then goes in the next batch, as one pipeline (no
MULTI: each script is atomic by itself). So an idle process adds no latency,
and a busy one makes one round trip per batch instead of per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

MAX_BATCH = 256  # bounds one pipeline's size (and a reply's memory); more waiting go in the next one

_Call = tuple[AsyncScript, Sequence[str], Sequence[str | int | float], "asyncio.Future[Any]"]


class Batcher:
    def __init__(self, redis: Redis, max_batch: int = MAX_BATCH) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._waiting: list[_Call] = []
        self._flusher: asyncio.Task[None] | None = None
        self.round_trips = 0  # for tests and benchmarks: how many pipelines went out

    @property
    def queued(self) -> int:
        """Calls waiting for the next batch (beyond the one in flight): how far Redis is behind."""
        return len(self._waiting)

    async def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((script, keys, args, future))
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
            for *_, future in waiting:
                future.cancel()
            raise
        finally:
            self._flusher = None

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._run(batch)
        except Exception as exc:  # Redis unreachable: every caller of the batch gets the error
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for *_, future in batch:
                future.cancel()
            raise
        for (*_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller went away (client disconnected); the script ran all the same
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _run(self, batch: list[_Call]) -> list[Any]:
        """One pipeline of bare EVALSHAs. After a Redis restart every one of them failed alike
        (NOSCRIPT ran nothing), so the scripts are loaded and the whole batch is sent once more."""
        for attempt in (1, 2):
            self.round_trips += 1
            async with self.redis.pipeline(transaction=False) as pipe:
                for script, keys, args, _ in batch:
                    # a plain command: a cluster pipeline routes it by its keys (it refuses pipe.evalsha)
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 2 or not any(isinstance(r, NoScriptError) for r in replies):
                break
            for source in {script.script for script, *_ in batch}:
                await self.redis.script_load(source)
        return replies
