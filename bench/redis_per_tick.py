"""Redis commands per promoter tick, by command, as the line grows and as sockets connect.

For each line length W: a fresh stack, W tickets joined, the event opened
(rate 600/min: 5 admissions a 500 ms tick), then two windows of `--window-ticks`
ticks measured with CONFIG RESETSTAT / INFO commandstats:

  * no socket connected (the promoter alone, plus what the web process does
    for an event it holds no socket of: nothing);
  * C sockets connected (real WebSockets), evenly spread over the line, the
    rest waiting without one; `--connected all` (the default): every waiting
    ticket holds a socket.

Calls made inside Lua scripts are counted under their own names (Redis
does), so EVALSHA's cost shows as the commands it runs. What grows: the
admission work, with the admissions per tick. What must not: anything with
W or with C — positions come from the bus, abandonment from departures, and
the web process writes one heartbeat per event every few seconds. The last
line is the ratio of the all-connected totals, largest W over smallest
(target <= 1.1).

    python -m bench.redis_per_tick                                # W = 1000, 10000; every ticket connected
    python -m bench.redis_per_tick --waiting 1000,5000 --connected 500
"""

from __future__ import annotations

import argparse
import asyncio
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


async def scenario(
    waiting: int, connected: int | None, args: argparse.Namespace, deadline: float
) -> list[tuple[str, dict[str, float], float]]:
    """`connected` None: every waiting ticket."""
    connected = waiting if connected is None else connected
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
                print(f"  W={waiting}, 0 sockets: {total:.1f} commands per tick", flush=True)
                step = max(1, waiting // max(1, connected))
                chosen = [t for t, _ in tickets[::step]][:connected]
                # paused while they connect: a position pushed to every socket every tick would slow the
                # connects down, and they are not what is measured
                await stack.set_status(http, "paused")
                started = time.monotonic()
                with ClientPool(
                    stack, chosen, args.procs, max(1, 256 // args.procs), max_seconds=deadline - time.time() - 10
                ) as pool:
                    attached = await pool.wait_connected()
                    print(f"  {attached} sockets connected in {time.monotonic() - started:.0f} s", flush=True)
                    await stack.set_status(http, "open")
                    await asyncio.sleep(args.settle)
                    per_tick, total = await measure_commands(redis, args.window_ticks, tick_s)
                    out.append((f"W={waiting}, {attached} sockets", per_tick, total))
                    print(f"  W={waiting}, {attached} sockets: {total:.1f} commands per tick", flush=True)
                    for role, mark in (("web", "heartbeat"), ("promoter", "is gone")):
                        for line in stack.log_tail(role, 2000).splitlines():
                            if mark in line:  # a process taken for dead would skew the count: say so
                                print(f"  {role}: {line}", flush=True)
                    await pool.results()
        finally:
            await redis.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", default="1000,10000", help="comma-separated line lengths (default 1000,10000)")
    parser.add_argument("--connected", default="all", help="sockets connected in the second window, or 'all' (default)")
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
    parser.add_argument("--timeout", type=float, default=400.0, help="hard limit for the whole run, seconds")
    args = parser.parse_args()
    install_deadline(args.timeout)
    deadline = time.time() + args.timeout
    raise_nofile()
    print_machine()
    columns: list[tuple[str, dict[str, float], float]] = []
    connected = None if args.connected == "all" else int(args.connected)
    for w in [int(x) for x in args.waiting.split(",") if x.strip()]:
        columns += asyncio.run(scenario(w, connected, args, deadline))
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
    with_sockets = [total for name, _, total in columns if not name.endswith(" 0 sockets")]
    print(f"\nadmissions per tick: {args.rate / 60 * args.tick_ms / 1000:g}")
    if len(with_sockets) >= 2:
        print(
            f"commands per tick with sockets, largest line / smallest: {with_sockets[-1]:.1f} / "
            f"{with_sockets[0]:.1f} = {with_sockets[-1] / with_sockets[0]:.2f}x"
        )


if __name__ == "__main__":
    main()
