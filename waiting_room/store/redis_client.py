"""One place that turns WR_REDIS_URL into an asyncio Redis client."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

SOCKET_TIMEOUT = 5.0
MAX_CONNECTIONS = 64  # per process (per node on a cluster); callers beyond it wait for a free connection


SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")

# Connection errors (a pooled socket that died with a restarted Redis, LOADING while it reads its AOF)
# and timeouts are retried on a fresh connection. The retry must be redis-py's asyncio one: the
# synchronous Retry returns the coroutine unawaited, so its loop never sees the error and every stale
# pooled connection fails one request.
RETRYABLE = (RedisConnectionError, RedisTimeoutError)
RETRIES = 5  # 0.05 + 0.1 + 0.2 + 0.4 + 0.8 s at most: a restart's worth, then the caller hears 503


def retry_policy(retries: int = RETRIES) -> Retry:
    """A fresh policy (each client deep-copies it anyway); `retries=0` for callers that reconnect themselves."""
    backoff = ExponentialWithJitterBackoff(cap=1.0, base=0.05) if retries else NoBackoff()
    return Retry(backoff, retries, supported_errors=RETRYABLE)


def check_url(url: str) -> None:
    """Refuse a URL we cannot use at start, with words, rather than at the first request."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"WR_REDIS_URL must start with one of {', '.join(s + '://' for s in SCHEMES)}")
    if parts.scheme in ("redis+cluster", "redis+sentinel"):
        try:
            hosts(parts.netloc)
        except ValueError:
            raise ValueError(f"WR_REDIS_URL: {parts.scheme}:// needs host:port[,host:port...], got {url!r}") from None


def hosts(netloc: str) -> list[tuple[str, int]]:
    found = []
    for item in netloc.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(item)
        found.append((host, int(port)))
    return found


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


def connect(url: str, **options: Any) -> Redis:
    """A client with retries on connection errors, so a Redis restart is ridden out, not fatal.

    A cluster client is typed as `Redis`: it offers the same commands, routes each
    by its key's slot, and the callers stay one code path (what differs on a
    cluster, pub/sub and MULTI across slots, is handled where it happens)."""
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2.0,
        "socket_timeout": SOCKET_TIMEOUT,
        "health_check_interval": 15,
        "retry": retry_policy(),
        "retry_on_error": list(RETRYABLE),
        **options,
    }
    check_url(url)
    parts = urlsplit(url)
    if parts.scheme == "redis+cluster":
        nodes = [ClusterNode(host, port) for host, port in hosts(parts.netloc)]
        common.pop("health_check_interval")
        cluster = RedisCluster(startup_nodes=nodes, max_connections=MAX_CONNECTIONS, **common)
        return cast(Redis, cluster)
    if parts.scheme == "redis+sentinel":
        service = parts.path.strip("/") or "mymaster"
        sentinel = Sentinel(hosts(parts.netloc), socket_timeout=SOCKET_TIMEOUT)  # type: ignore[no-untyped-call]
        client: Redis = sentinel.master_for(service, redis_class=Redis, **common)
        return client
    pool = BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT, **common)
    return Redis.from_pool(pool)  # the client owns its pool: aclose() closes its connections too


async def rerun_after(redis: Redis, error: BaseException) -> bool:
    """After an error on a cluster, read again where every slot lives; True if the call may be
    sent again because it cannot have run (a MULTI refused whole, e.g. for a slot that moved).

    redis-py follows MOVED for single commands, but a MULTI refused for one comes back as a
    plain error and its client would go on asking the old owner."""
    if not is_cluster(redis):
        return False
    with contextlib.suppress(RedisError, OSError):
        await cast(RedisCluster, redis).nodes_manager.initialize()
    return not isinstance(error, RedisConnectionError | RedisTimeoutError | OSError)


async def execute(
    redis: Redis, build: Callable[[Pipeline], None], *, transaction: bool = True, raise_on_error: bool = True
) -> list[Any]:
    """Build and run a pipeline (a MULTI by default); on a cluster, once more after a moved slot."""
    for attempt in (1, 2):
        try:
            async with redis.pipeline(transaction=transaction) as pipe:
                build(pipe)
                replies: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
                return replies
        except RedisError as exc:
            if attempt == 2 or not await rerun_after(redis, exc):
                raise
    raise AssertionError("unreachable")
