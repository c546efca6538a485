"""What the fast lane (queue_only_when_full) costs Redis per join, and that it does not grow with the line
or with the admitted-but-unredeemed set.

For each scenario: a fresh event, its sets pre-filled to the size shown, CONFIG RESETSTAT, `--joins`
sequential joins through the product's own `Queue.join`, then INFO commandstats: the server time per
EVALSHA of join.lua (microseconds, the whole script), as a ratio to a bare EVALSHA of `return 1`
measured in the same run, and the commands the script ran per join. Server time, not client time:
the Python client dominates a round trip (~6.8k EVALSHA/s per process) and would hide the script.

    python -m bench.fast_lane                   # 2,000 joins per scenario, sets of 1,000 and 100,000
    python -m bench.fast_lane --joins 5000 --big 200000
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.common import install_deadline, print_machine, table
from waiting_room.core.tickets import SHUFFLE_RANGE
from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts

FAST = 1_000_000


async def fill(redis: Redis, key: str, n: int, score: float) -> None:
    """`n` members in a sorted set (fake tickets), in pipelined chunks."""
    for start in range(0, n, 10_000):
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {f"fill-{i}": score + i for i in range(start, min(n, start + 10_000))})
            await pipe.execute()


async def server_stats(redis: Redis) -> dict[str, Any]:
    raw: dict[str, Any] = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): value for name, value in raw.items()}


async def measure(redis: Redis, run: Any, n: int) -> tuple[float, float]:
    """(server microseconds per EVALSHA, commands run per call) over `n` calls of `run`."""
    await redis.config_resetstat()
    for _ in range(n):
        await run()
    stats = await server_stats(redis)
    evalsha = stats["evalsha"]
    inner = sum(int(v["calls"]) for name, v in stats.items() if name not in ("evalsha", "info", "config|resetstat"))
    return float(evalsha["usec_per_call"]), inner / int(evalsha["calls"])


async def scenario(redis: Redis, queue: Queue, events: Events, settings: dict[str, Any], **sizes: int) -> Any:
    event = f"bench-{secrets.token_hex(4)}"
    await events.put(event, settings)
    k = EventKeys(event)
    await fill(redis, k.line, sizes.get("line", 0), SHUFFLE_RANGE + 10**9)
    far = 4_000_000_000_000  # ms: tokens that expire long after the run, holding capacity
    await fill(redis, k.pending, sizes.get("pending", 0), far)

    async def one() -> None:
        await queue.join(event, secrets.token_urlsafe(18))

    return event, one


async def main(joins: int, small: int, big: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            scripts = Scripts.register(redis)
            queue, events = Queue(redis, scripts, "http://bench", tick_ms=500), Events(redis)
            bare = redis.register_script("return 1")

            async def baseline() -> None:
                await bare()

            rows = []
            base_us, _ = await measure(redis, baseline, joins)
            rows.append(["bare EVALSHA (`return 1`)", f"{base_us:.2f}", "1.00", "0"])
            on = {"queue_only_when_full": True, "rate_per_minute": FAST}
            cases = [
                ("off, line of {small}", {"rate_per_minute": FAST}, {"line": small}),
                ("off, line of {big}", {"rate_per_minute": FAST}, {"line": big}),
                ("on, admits, {small} pending", {**on, "max_active": 10**7}, {"pending": small}),
                ("on, admits, {big} pending", {**on, "max_active": 10**7}, {"pending": big}),
                ("on, someone waits: queues, line of {big}", on, {"line": big}),
                ("on, capacity full (then a line), {big} pending", {**on, "max_active": big}, {"pending": big}),
            ]
            for label, settings, sizes in cases:
                _, run = await scenario(redis, queue, events, settings, **sizes)
                us, commands = await measure(redis, run, joins)
                text = label.format(small=f"{small:,}", big=f"{big:,}")
                rows.append([f"join.lua, fast lane {text}", f"{us:.2f}", f"{us / base_us:.2f}", f"{commands:.1f}"])
            print(table(["what", "µs per call (server)", "ratio to bare", "commands per call"], rows))
        finally:
            await redis.aclose()
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joins", type=int, default=2000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()
    install_deadline(300)
    print_machine()
    asyncio.run(main(args.joins, args.small, args.big))
