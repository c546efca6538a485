"""One place that turns WR_REDIS_URL into an asyncio Redis client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

SOCKET_TIMEOUT = 5.0
MAX_CONNECTIONS = 64  # per process; callers beyond it wait for a free connection instead of failing


SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")

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
    scheme = urlsplit(url).scheme
    if scheme == "redis+cluster":
        raise ValueError("WR_REDIS_URL: redis+cluster:// is not supported yet; use a single node or Sentinel")
    if scheme not in SCHEMES:
        raise ValueError(f"WR_REDIS_URL must start with one of {', '.join(s + '://' for s in SCHEMES)}")


def connect(url: str, **options: Any) -> Redis:
    """A client with retries on connection errors, so a Redis restart is ridden out, not fatal."""
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
    if parts.scheme == "redis+sentinel":
        service = parts.path.strip("/") or "mymaster"
        hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1])) for h in parts.netloc.split(",")]
        sentinel = Sentinel(hosts, socket_timeout=SOCKET_TIMEOUT)  # type: ignore[no-untyped-call]
        client: Redis = sentinel.master_for(service, redis_class=Redis, **common)
        return client
    pool = BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT, **common)
    return Redis(connection_pool=pool)
