"""Redis commands per promoter tick, by command, as the line grows and as sockets connect.

For each line length W: a fresh stack, W tickets joined, the event opened
(rate 600/min: 5 admissions a 500 ms tick), then two windows of `--window-ticks`
ticks measured with CONFIG RESETSTAT / INFO commandstats:

  * no socket connected (the promoter alone, plus what the web process does
    for an event it holds no socket of: nothing);
  * C sockets connected, evenly spread over the line, the rest waiting
    without one.

Calls made inside Lua scripts are counted under their own names (Redis
does), so EVALSHA's cost shows as the commands it runs. What should grow:
the refresh slice, ceil(C x tick / 5 s) ZRANK + HGET per tick, with C; and
the admission work, with the admissions per tick. What must not: anything
with W.

    python -m bench.redis_per_tick                                # W = 1000, 5000; C = 500
    python -m bench.redis_per_tick --waiting 1000,5000,20000 --connected 500
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

import httpx
from redis.asyncio import Redis

from bench.clients import ClientPool
from bench.common import (
    Stack,
    install_deadline,
    join,
    measure_commands,
    print_machine,
    raise_nofile,
    table,
)
from waiting_room.web.rooms import REFRESH_SECONDS


async def scenario(
    waiting: int, connected: int, args: argparse.Namespace, deadline: float
) -> list[tuple[str, dict[str, float], float]]:
    tick_s = args.tick_ms / 1000
    out = []
    with Stack(tick_ms=args.tick_ms) as stack:
        redis = Redis.from_url(stack.redis_url, decode_responses=True)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                await stack.put_event(http, status="paused", rate_per_minute=args.rate, abandon_after_seconds=3600)
                tickets, rate, via = await join(stack, waiting, args.join_via)
                print(f"  W={waiting}: joined via {via} at {rate:,.0f}/s", flush=True)
                await stack.set_status(http, "open")
                await asyncio.sleep(args.settle)
                per_tick, total = await measure_commands(redis, args.window_ticks, tick_s)
                out.append((f"W={waiting}, 0 sockets", per_tick, total))
                step = max(1, waiting // max(1, connected))
                chosen = [t for t, _ in tickets[::step]][:connected]
                with ClientPool(
                    stack, chosen, args.procs, max(1, 64 // args.procs), max_seconds=deadline - time.time() - 10
                ) as pool:
                    attached = await pool.wait_connected()
                    await asyncio.sleep(args.settle)
                    per_tick, total = await measure_commands(redis, args.window_ticks, tick_s)
                    out.append((f"W={waiting}, {attached} sockets", per_tick, total))
                    await pool.results()
        finally:
            await redis.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", default="1000,5000", help="comma-separated line lengths (default 1000,5000)")
    parser.add_argument("--connected", type=int, default=500, help="sockets connected in the second window")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--rate", type=int, default=600, help="rate_per_minute (default 600)")
    parser.add_argument("--tick-ms", type=int, default=500, help="WR_TICK_MS (default 500)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before each window")
    parser.add_argument("--window-ticks", type=int, default=20, help="ticks per window (default 20)")
    parser.add_argument(
        "--join-via",
        choices=("auto", "http", "lua"),
        default="lua",
        help="how tickets join (default lua: join.lua directly; the line is what matters here)",
    )
    parser.add_argument("--timeout", type=float, default=175.0, help="hard limit for the whole run, seconds")
    args = parser.parse_args()
    install_deadline(args.timeout)
    deadline = time.time() + args.timeout
    raise_nofile()
    print_machine()
    columns: list[tuple[str, dict[str, float], float]] = []
    for w in [int(x) for x in args.waiting.split(",") if x.strip()]:
        columns += asyncio.run(scenario(w, args.connected, args, deadline))
    names = sorted(
        {c for _, calls, _ in columns for c in calls}, key=lambda c: -max(k.get(c, 0) for _, k, _ in columns)
    )
    print(
        f"\n## Redis commands per tick ({args.window_ticks}-tick windows, tick {args.tick_ms} ms, "
        f"rate {args.rate}/min)\n"
    )
    print(
        table(
            ["command", *(name for name, _, _ in columns)],
            [[c, *(calls.get(c, 0.0) for _, calls, _ in columns)] for c in names]
            + [["total", *(total for _, _, total in columns)]],
        )
    )
    slice_ = math.ceil(args.connected * args.tick_ms / 1000 / REFRESH_SECONDS)
    print(
        f"\nexpected refresh slice with {args.connected} sockets: ceil({args.connected} x {args.tick_ms / 1000} s / "
        f"{REFRESH_SECONDS:.0f} s) = {slice_} ZRANK + {slice_} HGET per tick; admissions per tick: "
        f"{args.rate / 60 * args.tick_ms / 1000:g}"
    )


if __name__ == "__main__":
    main()
