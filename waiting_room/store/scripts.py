"""The Lua scripts, read from the package once and registered with a client.

Called on their own, redis-py's Script objects send EVALSHA and load the
source on NOSCRIPT. Inside a pipeline redis-py would instead send SCRIPT
EXISTS before every pipeline, one more round trip on every tick, refresh
and status poll; `pipeline()` below queues a bare EVALSHA and loads the
scripts only when Redis says it has forgotten them (after a restart), then
runs the pipeline again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


def source(name: str) -> str:
    return resources.files("waiting_room.store").joinpath("lua", f"{name}.lua").read_text()


@dataclass(frozen=True)
class Scripts:
    join: AsyncScript
    promote: AsyncScript
    redeem: AsyncScript
    release: AsyncScript
    touch: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(**{name: redis.register_script(source(name)) for name in cls.__dataclass_fields__})

    @staticmethod
    def queue(pipe: Pipeline, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | float]) -> None:
        """Queue a bare EVALSHA (no SCRIPT EXISTS first); run the pipeline with `pipeline()`."""
        pipe.evalsha(script.sha, len(keys), *keys, *args)

    async def load(self) -> None:
        for name in self.__dataclass_fields__:
            script: AsyncScript = getattr(self, name)
            await script.registered_client.script_load(script.script)

    async def pipeline(
        self, redis: Redis, build: Callable[[Pipeline], None], *, transaction: bool, raise_on_error: bool = True
    ) -> list[Any]:
        """Build and run a pipeline; if Redis has forgotten the scripts, load them and run it once more.

        Running it again is safe where it is used: after a restart every EVALSHA of the pipeline failed
        alike, and the other commands are reads, idempotent marks and `claim` messages."""
        for attempt in (1, 2):
            async with redis.pipeline(transaction=transaction) as pipe:
                build(pipe)
                try:
                    replies: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
                except NoScriptError:
                    replies = [NoScriptError()]
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                await self.load()
                continue
            if any(isinstance(r, NoScriptError) for r in replies) and raise_on_error:
                raise NoScriptError("the scripts could not be loaded")
            return replies
        raise AssertionError("unreachable")
