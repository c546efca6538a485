"""What a join costs as batches grow: Redis server time and web-process CPU per join, against one bare
EVALSHA, in one run.

Joins go through the product's own `Queue.join`, `concurrency` at a time (what arrives together goes in
one batch: one join.lua run), on a private redis-server (AOF everysec, as the product runs). Measured
per join: Redis's own time inside EVALSHA (INFO commandstats after CONFIG RESETSTAT), the client
process's CPU (what a web process spends on the join path below HTTP: ids, batching, packing, the
reply), and the batches sent. The floor: one EVALSHA of `return 1` per call through redis-py, in the
same run.

    python -m bench.join_batches                          # 1, 8, 32 and 128 at a time, 4,000 joins each
    python -m bench.join_batches --joins 8000 --concurrency 1,64
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import uvloop
from redis.asyncio import Redis

from bench.common import install_deadline, print_machine, table
from waiting_room.core import ids
from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.events import Events
from waiting_room.store.queue import Queue
from waiting_room.store.redis_client import connect
from waiting_room.store.scripts import Scripts


async def evalsha_us(redis: Redis) -> float:
    stats = await redis.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {"usec": 0})
    return float(evalsha["usec"])


async def joins(redis: Redis, event: str, n: int, concurrency: int) -> tuple[float, float, int]:
    """(Redis µs per join, client CPU µs per join, batches) for `n` joins, `concurrency` at a time."""
    queue = Queue(redis, Scripts(redis), "http://127.0.0.1")
    await Events(redis).put(event, {"status": "paused"})
    await queue.join(event, ids.token_urlsafe(18))  # scripts loaded, connection open
    await redis.config_resetstat()
    batches = queue.scripts.joins.batches
    cpu = time.process_time()

    async def caller(i: int) -> None:
        for j in range(n // concurrency):
            await queue.join(event, ids.token_urlsafe(18), f"10.{i % 256}.{j // 256 % 256}.{j % 256}")

    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    cpu = time.process_time() - cpu
    done = n // concurrency * concurrency
    return await evalsha_us(redis) / done, cpu / done * 1e6, queue.scripts.joins.batches - batches


async def floor(redis: Redis, n: int) -> tuple[float, float]:
    """(Redis µs, client CPU µs) per bare EVALSHA of `return 1`."""
    script = redis.register_script("return 1")
    await script()
    await redis.config_resetstat()
    cpu = time.process_time()
    for _ in range(n):
        await script()
    return await evalsha_us(redis) / n, (time.process_time() - cpu) / n * 1e6


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        redis = connect(server.url)
        try:
            bare_redis, bare_cpu = await floor(redis, args.joins)
            rows = []
            for c in [int(c) for c in args.concurrency.split(",")]:
                redis_us, cpu_us, batches = await joins(redis, f"bench{c}", args.joins, c)
                rows.append((c, batches, redis_us, redis_us / bare_redis, cpu_us, cpu_us / bare_cpu))
            print(
                table(
                    ["at a time", "batches", "Redis µs/join", "÷ bare EVALSHA", "client CPU µs/join", "÷ bare EVALSHA"],
                    rows,
                )
            )
            print(f"\nbare EVALSHA of `return 1`: {bare_redis:.1f} µs in Redis, {bare_cpu:.1f} µs of client CPU")
        finally:
            await redis.aclose()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joins", type=int, default=4000)
    parser.add_argument("--concurrency", default="1,8,32,128")
    args = parser.parse_args()
    install_deadline(300)
    print_machine()
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
