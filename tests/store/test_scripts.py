"""Scripts in pipelines: a bare EVALSHA (no SCRIPT EXISTS round trip), and healing after Redis forgets them."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from waiting_room.promoter import Promoter
from waiting_room.store.events import Events
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts


async def _calls(redis: Redis, command: str) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_pipelines_send_no_script_exists(
    promoter: Promoter, redis: Redis, queue: Queue, events: Events, event_id: str
) -> None:
    await events.put(event_id, {"status": "paused"})
    view, _ = await queue.join(event_id, "uid-0123456789abcdef")
    await promoter.tick()
    before = await _calls(redis, "script|exists") + await _calls(redis, "script")
    for _ in range(5):
        await promoter.tick()
        assert (await queue.status(view.ticket)) is not None
    assert await _calls(redis, "script|exists") + await _calls(redis, "script") == before


async def test_a_flushed_script_cache_heals_itself(
    promoter: Promoter, redis: Redis, scripts: Scripts, queue: Queue, events: Events, event_id: str
) -> None:
    """What a Redis restart does to loaded scripts; status, the tick and the hub's reads load them again."""
    await events.put(event_id, {"status": "open", "rate_per_minute": 60_000})
    view, _ = await queue.join(event_id, "uid-0123456789abcdef")
    await redis.script_flush()
    seen = await queue.status(view.ticket)
    assert seen is not None and seen.state == "waiting"
    await redis.script_flush()
    results = [await promoter.tick() for _ in range(3)]
    assert any(r.leading for tick in results for r in tick)
    assert any(r.admitted == 1 for tick in results for r in tick)
    admitted = await queue.status(view.ticket)
    assert admitted is not None and admitted.state == "admitted"
