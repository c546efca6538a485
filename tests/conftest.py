"""Fixtures for the Redis-backed and multi-process tests.

Nothing here is autouse: the plain unit tests of pure modules need none of
it, and a redis-server is started only when a test asks for one.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from support.cluster import Cluster
from support.redis_cluster import RedisCluster, missing
from support.redis_server import start_redis

from waiting_room.promoter import Promoter
from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.events import Events
from waiting_room.store.keys import Keyspace
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts

ISSUER = "http://waiting-room.test"
DEADLINE_SECONDS = 90
PROMOTER_TICK_MS = 100


@pytest.fixture
def deadline() -> Iterator[None]:
    """No test hangs the suite: SIGALRM after DEADLINE_SECONDS."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"test exceeded its {DEADLINE_SECONDS} s deadline")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One private redis-server (AOF on, free port) for the in-process tests; each test flushes it."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real six-node Redis Cluster (3 primaries, 3 replicas), shared by the cluster tests.

    Tests that kill a node wait for it to be healthy again before they end, so the next finds
    three primaries with a replica each (which node is which may have changed)."""
    why = missing()
    if why is not None:
        pytest.skip(f"no Redis Cluster: {why}")
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.close()


@pytest.fixture
def keyspace() -> Keyspace:
    """A key prefix of this test's own: tests share the server without flushing it, and see nothing of
    each other's events, promoters or bus messages."""
    return Keyspace(f"t{uuid4().hex[:12]}")


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_factory(redis_server: EmbeddedRedis) -> AsyncIterator[Callable[[], Redis]]:
    """More clients on the same server (one per promoter or hub, as separate processes would have)."""
    made: list[Redis] = []

    def make() -> Redis:
        client: Redis = Redis.from_url(redis_server.url, decode_responses=True)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def scripts(redis: Redis) -> Scripts:
    return Scripts.register(redis)


@pytest.fixture
def queue(redis: Redis, scripts: Scripts, keyspace: Keyspace) -> Queue:
    return Queue(redis, scripts, ISSUER, keyspace=keyspace)


@pytest.fixture
def events(redis: Redis, keyspace: Keyspace) -> Events:
    return Events(redis, keyspace)


@pytest.fixture
def make_promoter(keyspace: Keyspace) -> Callable[..., Promoter]:
    """Promoters in this test's keyspace, each on the client given (as separate processes would be)."""

    def make(client: Redis, owner: str | None = None, tick_ms: int = PROMOTER_TICK_MS) -> Promoter:
        return Promoter(client, Scripts.register(client), tick_ms, owner, keyspace)

    return make


@pytest.fixture
def promoter(redis: Redis, make_promoter: Callable[..., Promoter]) -> Promoter:
    """A promoter driven by hand, a tick at a time (see support.promoting)."""
    return make_promoter(redis, "promoter-test")


@pytest.fixture
def event_id() -> str:
    return f"t-{uuid4().hex[:10]}"


@pytest.fixture
def cluster_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """Start clusters of product processes for one test; all are stopped after it (logs shown on failure)."""
    made: list[Cluster] = []
    request.node.wr_clusters = made

    def make(webs: int = 1, promoters: int = 1, workers: int = 1, **options: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(made)}", webs, promoters, workers, **options)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, show the last lines each product process logged."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and report.when == "call":
        clusters = [*getattr(item, "wr_clusters", []), getattr(item, "funcargs", {}).get("shared_cluster")]
        for cluster in clusters:
            if isinstance(cluster, Cluster):
                report.sections.append(("product processes", cluster.describe()))
