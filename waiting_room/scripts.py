"""The Lua scripts, read from the package once and registered with a client.

redis-py's Script objects send EVALSHA and load the source on NOSCRIPT, so a
Redis restart (which forgets loaded scripts) heals itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def source(name: str) -> str:
    return resources.files("waiting_room").joinpath("lua", f"{name}.lua").read_text()


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
