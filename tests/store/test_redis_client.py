"""WR_REDIS_URL forms against real servers: plain, and Sentinel (a real redis-sentinel in front of it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.sentinel import SentinelGroup

from waiting_room.store.events import Events
from waiting_room.store.queue import Queue
from waiting_room.store.redis_client import check_url, connect
from waiting_room.store.scripts import Scripts


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[str]:
    """A master and one sentinel watching it as `mymaster`; yields the sentinel URL."""
    group = SentinelGroup(tmp_path).start()
    try:
        yield group.url
    finally:
        group.close()


async def test_a_sentinel_url_reaches_the_master_it_names(sentinel: str) -> None:
    redis = connect(sentinel)
    try:
        await Events(redis).put("via-sentinel", {"status": "paused"})
        view, created = await Queue(redis, Scripts.register(redis), "http://test").join("via-sentinel", "u" * 20)
        assert created and view.position == 1
        assert await redis.execute_command("ROLE") is not None
    finally:
        await redis.aclose()
        for watcher in redis.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
            await watcher.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://h:1",
        "unix:///tmp/redis.sock",
        "redis+sentinel://127.0.0.1:26379/mymaster",
        "redis+cluster://127.0.0.1:7000",
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7001",
    ],
)
def test_usable_urls_pass(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379", "redis+cluster://127.0.0.1", "redis+cluster://a:1,b", "127.0.0.1:6379"]
)
def test_unusable_urls_are_refused_in_words(url: str) -> None:
    with pytest.raises(ValueError, match="WR_REDIS_URL"):
        check_url(url)
