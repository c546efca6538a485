"""One event with a million waiting, on one real redis-server: the shard's side of docs/scaling.md.

Runs the product's own Lua scripts (join.lua, promote.lua, the status read)
on a private redis-server (from PATH, AOF on as in production) and measures,
with the line at its full length:

  * memory per waiting ticket (INFO used_memory, before and after the joins);
  * Redis time per join, per promote tick (at several admissions per tick),
    per status read (the MULTI of GET /api/tickets), from INFO commandstats
    (usec per call, server side: what the shard spends), and each as a ratio
    to a bare EVALSHA of `return 1` measured in the same run;
  * Redis commands per join and per tick, Lua-internal calls included.

Bounded: joins stop at --tickets or after --join-seconds (the figures are
then for the line it reached, which is printed), and a hard timeout ends
the whole run.

    python -m bench.million                       # 1,000,000 tickets
    python -m bench.million --tickets 200000      # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.common import install_deadline, print_machine, table
from waiting_room.core.tickets import SHUFFLE_RANGE, new_ticket
from waiting_room.store.embedded import EmbeddedRedis
from waiting_room.store.events import Events
from waiting_room.store.keys import EventKeys
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import PromoteArgs, Scripts

EVENT = "million"
BATCH = 2000  # joins per pipeline while filling the line


async def server_stats(redis: Redis) -> dict[str, tuple[int, float]]:
    """{command: (calls, usec)} since the last CONFIG RESETSTAT."""
    raw: dict[str, Any] = await redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
        for name, v in raw.items()
        if name not in ("cmdstat_info", "cmdstat_config|resetstat")
    }


async def measured(redis: Redis, run: Any) -> tuple[int, float, float]:
    """Run `run()` and return (Redis commands, EVALSHA-level usec, wall seconds) it cost."""
    await redis.config_resetstat()
    started = time.perf_counter()
    await run()
    wall = time.perf_counter() - started
    stats = await server_stats(redis)
    commands = sum(calls for name, (calls, _) in stats.items() if name not in ("evalsha", "exec", "multi"))
    usec = sum(u for name, (_, u) in stats.items() if name in ("evalsha", "exec"))
    return commands, usec, wall


async def fill(redis: Redis, scripts: Scripts, tickets: int, seconds: float) -> int:
    k = EventKeys(EVENT)
    done = 0
    deadline = time.monotonic() + seconds
    while done < tickets and time.monotonic() < deadline:
        n = min(BATCH, tickets - done)
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(n):
                scripts.queue_join(
                    pipe,
                    k,
                    ticket=new_ticket(EVENT),
                    uid=secrets.token_urlsafe(15),
                    shuffle=secrets.randbelow(SHUFFLE_RANGE),
                    jti=secrets.token_urlsafe(16),
                    tick_ms=500,
                )
            await pipe.execute()
        done += n
        if done % 100_000 < BATCH:
            print(f"  {done:,} joined", flush=True)
    return done


async def main(args: argparse.Namespace) -> None:
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        redis = Redis(port=server.port, decode_responses=True)
        try:
            await run(redis, args)
        finally:
            await redis.aclose()
            server.stop()


async def run(redis: Redis, args: argparse.Namespace) -> None:
    scripts = Scripts.register(redis)
    await scripts.load()
    await Events(redis).put(EVENT, {"status": "paused", "abandon_after_seconds": 86400})
    queue = Queue(redis, scripts, "http://bench")
    bare = redis.register_script("return 1")
    await bare()

    async def bare_batch() -> None:
        for _ in range(1000):
            await bare()

    baseline_cmds, baseline_usec, _ = await measured(redis, bare_batch)
    bare_usec = baseline_usec / 1000

    before = int((await redis.info("memory"))["used_memory"])
    started = time.monotonic()
    joined = await fill(redis, scripts, args.tickets, args.join_seconds)
    fill_s = time.monotonic() - started
    after = int((await redis.info("memory"))["used_memory"])
    per_ticket = (after - before) / joined
    print(f"line filled: {joined:,} tickets in {fill_s:.0f} s ({joined / fill_s:,.0f} joins/s, one client)")

    rows: list[list[object]] = []
    n = args.samples
    k = EventKeys(EVENT)

    def join_batch() -> Any:
        async def go() -> None:
            for _ in range(n):
                await queue.join(EVENT, secrets.token_urlsafe(15))

        return go()

    cmds, usec, wall = await measured(redis, join_batch)
    rows.append(["join (join.lua)", cmds / n, usec / n, usec / n / bare_usec, wall / n * 1e6])

    sample = [t for t in await redis.zrange(k.line, joined // 2, joined // 2 + n - 1)]

    def status_batch() -> Any:
        async def go() -> None:
            for ticket in sample:
                await queue.status(ticket)

        return go()

    cmds, usec, wall = await measured(redis, status_batch)
    rows.append(
        [
            "status read (MULTI)",
            cmds / len(sample),
            usec / len(sample),
            usec / len(sample) / bare_usec,
            wall / len(sample) * 1e6,
        ]
    )

    # the rate's budget lives in Redis (a bucket filled on Redis time): ticks 100 ms apart at a rate of
    # N a tick admit N each (the sleep between ticks is left out of the wall time)
    tick_ms = 100
    for admit in args.admit:
        change = {"status": "open", "rate_per_minute": admit * 60_000 // tick_ms} if admit else {"status": "paused"}
        await Events(redis).put(EVENT, change)
        await asyncio.sleep(tick_ms / 1000)
        ticks = args.ticks
        spent = [0.0, 0]  # wall seconds in promote calls, tickets admitted

        async def tick_batch(ticks: int = ticks, spent: list[Any] = spent) -> None:
            for _ in range(ticks):
                started = time.perf_counter()
                reply = await scripts.promote(
                    k,
                    PromoteArgs(
                        owner="bench",
                        lease_ms=3000,
                        tick_ms=tick_ms,
                        observed_rate=None,
                        channel="wr:bus",
                        last_published="",
                        batch=500,
                        keep_finished_ms=6 * 3600 * 1000,
                    ),
                )
                spent[0] += time.perf_counter() - started
                spent[1] += reply.admitted
                await asyncio.sleep(tick_ms / 1000)

        cmds, usec, _ = await measured(redis, tick_batch)
        per = [cmds / ticks, usec / ticks, usec / ticks / bare_usec, spent[0] / ticks * 1e6]
        rows.append([f"promote tick, {spent[1] / ticks:.0f} admitted (asked {admit})", *per])
    waiting = await redis.zcard(k.line)
    print(
        f"\nline at {waiting:,} waiting; memory {per_ticket:,.0f} B per ticket "
        f"({(after - before) / 2**20:,.0f} MiB for {joined:,}); bare EVALSHA {bare_usec:.1f} µs "
        f"({baseline_cmds} commands for 1000 calls)\n"
    )
    print(table(["operation", "Redis commands", "Redis µs", "x bare EVALSHA", "wall µs (one client)"], rows))


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tickets", type=int, default=1_000_000)
    p.add_argument("--join-seconds", type=float, default=240.0, help="stop filling the line after this long")
    p.add_argument("--samples", type=int, default=2000, help="joins and status reads measured at full length")
    p.add_argument("--ticks", type=int, default=50, help="promote ticks measured per admission size")
    p.add_argument("--admit", type=lambda s: [int(x) for x in s.split(",")], default=[0, 10, 100, 1000])
    p.add_argument("--timeout", type=float, default=600.0, help="hard limit for the whole run")
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse()
    install_deadline(arguments.timeout)
    asyncio.run(main(arguments))
