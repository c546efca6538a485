"""Joining in bulk for the in-process tests."""

from __future__ import annotations

import secrets

from waiting_room.store.queue import Queue


def uid() -> str:
    """A fresh wr_uid: one more browser."""
    return secrets.token_urlsafe(18)


async def join_many(queue: Queue, event: str, n: int) -> list[str]:
    """`n` tickets from `n` browsers, in join order."""
    return [(await queue.join(event, uid()))[0].ticket for _ in range(n)]
