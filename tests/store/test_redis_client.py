"""WR_REDIS_URL forms against real servers: plain, and Sentinel (a real redis-sentinel in front of it)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from waiting_room.store.embedded import EmbeddedRedis, free_port, redis_server_binary
from waiting_room.store.events import Events
from waiting_room.store.queue import Queue
from waiting_room.store.redis_client import check_url, connect
from waiting_room.store.scripts import Scripts


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[str]:
    """A master and one sentinel watching it as `mymaster`; yields the sentinel URL."""
    master = EmbeddedRedis(tmp_path / "master")
    master.start()
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
    )
    proc = subprocess.Popen(
        [redis_server_binary(), str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"SENTINEL get-master-addr-by-name mymaster\r\n")
                    if str(master.port).encode() in s.recv(256):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-sentinel did not come up"
            time.sleep(0.1)
        yield f"redis+sentinel://127.0.0.1:{port}/mymaster"
    finally:
        proc.terminate()
        proc.wait(10)
        master.stop()


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
    ["redis://127.0.0.1:6379/0", "rediss://h:1", "unix:///tmp/redis.sock", "redis+sentinel://127.0.0.1:26379/mymaster"],
)
def test_usable_urls_pass(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis+cluster://127.0.0.1:7000", "127.0.0.1:6379"])
def test_unusable_urls_are_refused_in_words(url: str) -> None:
    with pytest.raises(ValueError, match="WR_REDIS_URL"):
        check_url(url)
