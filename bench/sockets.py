"""Sockets held by one web process with a position pushed to each of them every tick.

For each N: a fresh stack (own redis-server, one `waiting-room web`, one
`waiting-room promoter`), a paused event with N tickets, N WebSockets from a
pool of client processes, then the event opens at a rate that moves every
position every tick. Measured:

  1. connect time; whether every waiting socket got a position on every tick;
     messages/s delivered and the web process's CPU for them;
  2. lag from the promoter's publish (the `at` of each `advance`, Redis TIME)
     to the receipt of the matching `position` (same `served_total`);
  3. the web process's RSS per socket;
  4. Redis commands per tick with every waiting ticket connected.

    python -m bench.sockets                  # N = 1000 then 5000
    python -m bench.sockets --sockets 1000   # one size
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import pstats
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from bench.clients import ClientPool, SocketRecord
from bench.common import (
    Advance,
    BusTap,
    Stack,
    commandstats,
    cpu_seconds,
    install_deadline,
    join,
    measure_commands,
    percentile,
    print_machine,
    raise_nofile,
    rss_kib,
    table,
)


@dataclass
class Result:
    n: int
    procs: int
    join_rate: float
    connected: int
    connect_s: float
    handshake_p50_ms: float
    handshake_p99_ms: float
    rss_idle_mib: float
    rss_conn_mib: float
    rss_run_mib: float
    ticks: int
    expected: int
    delivered: int
    later_instead: int
    sockets_missing: int
    max_gap_s: float
    msgs_per_s: float
    web_cpu: float
    client_cpu: float
    lag_ms: list[float]
    bus_lag_ms: list[float]
    tick_done_ms: list[float]
    admitted_lag_ms: list[float]
    commands: dict[str, float]
    commands_total: float
    closed_by_server: int
    closes: str  # "code xN (first..last s after opening)", by close code
    tick_intervals_ms: list[float]
    connect_calls: dict[str, int]  # Redis calls while the sockets connected (plus the ticks meanwhile)
    loadavg: str

    @property
    def rss_per_socket_kib(self) -> float:
        return (self.rss_conn_mib - self.rss_idle_mib) * 1024 / max(1, self.connected)

    @property
    def rss_per_socket_run_kib(self) -> float:
        return (self.rss_run_mib - self.rss_idle_mib) * 1024 / max(1, self.connected)


async def warm_up(stack: Stack, tickets: list[str]) -> None:
    """Open and close a few sockets first, so one-off allocations do not count as per-socket cost."""
    for ticket in tickets:
        async with connect(
            f"{stack.ws_base}/ws/tickets/{ticket}",
            origin=stack.public_url,  # type: ignore[arg-type]
            compression=None,
            ping_interval=None,
        ) as ws:
            await asyncio.wait_for(ws.recv(), 5)


def analyse(
    n: int, records: list[SocketRecord], joined: dict[str, int], advances: list[Advance], window: tuple[float, float]
) -> dict[str, Any]:
    """Per tick in `window`: who should have got a position, who did, and how late."""
    in_window = [a for a in advances if window[0] <= a.at <= window[1]]
    by_served = {a.served: a for a in advances}
    expected = delivered = later = 0
    lags: list[float] = []
    per_tick_max: dict[int, float] = {}
    missing_sockets = 0
    max_gap = 0.0
    for rec in records:
        if not rec.attached or rec.close_code is not None:  # refused sockets are counted apart
            continue
        position = joined[rec.ticket]
        got = {served: t for t, served, *_ in rec.positions}
        missed = False
        for adv in in_window:
            if adv.served >= position:  # admitted by this advance: an `admitted` is due, not a position
                continue
            expected += 1
            t = got.get(adv.served)
            if t is None:
                missed = True
                if any(s > adv.served for s in got):
                    later += 1
                continue
            delivered += 1
            lag = (t - adv.at) * 1000
            lags.append(lag)
            per_tick_max[adv.served] = max(per_tick_max.get(adv.served, 0.0), lag)
        missing_sockets += missed
        times = [t for t, served, *_ in rec.positions if window[0] <= t <= window[1] and served < position]
        for a, b in itertools.pairwise(times):
            max_gap = max(max_gap, b - a)
    admitted_lag = []
    for rec in records:
        if rec.admitted_at:
            first = next(
                (a for a in sorted(by_served.values(), key=lambda a: a.served) if a.served >= joined[rec.ticket]), None
            )
            if first is not None:
                admitted_lag.append((rec.admitted_at - first.at) * 1000)
    return {
        "ticks": len(in_window),
        "expected": expected,
        "delivered": delivered,
        "later": later,
        "missing_sockets": missing_sockets,
        "max_gap": max_gap,
        "lags": lags,
        "tick_done": list(per_tick_max.values()),
        "bus_lag": [(a.received - a.at) * 1000 for a in in_window],
        "admitted_lag": admitted_lag,
        "tick_intervals": [(b.at - a.at) * 1000 for a, b in itertools.pairwise(in_window)],
    }


async def scenario(n: int, args: argparse.Namespace, deadline: float) -> Result:
    tick_s = args.tick_ms / 1000
    procs = args.procs or max(2, min(4, math.ceil(n / 1500)))
    profile = Path(f"{args.profile}.{n}") if args.profile else None
    with Stack(tick_ms=args.tick_ms, web_profile=profile) as stack:
        assert stack.web is not None
        pid = stack.web.pid
        redis = Redis.from_url(stack.redis_url, decode_responses=True)
        tap = BusTap(stack.redis_url)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                await stack.put_event(http, status="paused", rate_per_minute=args.rate, abandon_after_seconds=3600)
                joined_list, join_rate, via = await join(stack, n, args.join_via)
                joined = dict(joined_list)
                print(f"  N={n}: {n} tickets joined via {via} at {join_rate:,.0f}/s", flush=True)
                await warm_up(stack, [t for t, _ in joined_list[-10:]])
                await asyncio.sleep(1.5)
                rss_idle = rss_kib(pid)
                await tap.start()
                with ClientPool(
                    stack,
                    [t for t, _ in joined_list],
                    procs,
                    max(1, args.in_flight // procs),
                    max_seconds=deadline - time.time() - 10,
                ) as pool:
                    await redis.config_resetstat()
                    t0 = time.time()
                    connected = await pool.wait_connected()
                    connect_calls = await commandstats(redis)
                    connect_s = time.time() - t0
                    print(
                        f"  N={n}: {connected} sockets open in {connect_s:.1f} s ({procs} client processes)", flush=True
                    )
                    await asyncio.sleep(2)
                    rss_conn = rss_kib(pid)
                    await stack.set_status(http, "open")
                    t_open = time.time()
                    await asyncio.sleep(args.settle)
                    t_a, cpu_a = time.time(), cpu_seconds(pid)
                    commands, commands_total = await measure_commands(redis, args.window_ticks, tick_s)
                    await asyncio.sleep(max(0.0, t_open + args.duration - time.time()))
                    t_b, cpu_b = time.time(), cpu_seconds(pid)
                    rss_run = rss_kib(pid)
                    records, client_cpu = await pool.results()
        finally:
            await tap.stop()
            await redis.aclose()
    handshakes = [(r.attached - r.started) * 1000 for r in records if r.attached]
    a = analyse(n, records, joined, tap.advances, (t_open + args.settle, t_b - 1.0))
    msgs = sum(1 for r in records for t, *_ in r.positions if t_a <= t <= t_b)
    return Result(
        n=n,
        procs=procs,
        join_rate=join_rate,
        connected=connected,
        connect_s=connect_s,
        handshake_p50_ms=percentile(handshakes, 50),
        handshake_p99_ms=percentile(handshakes, 99),
        rss_idle_mib=rss_idle / 1024,
        rss_conn_mib=rss_conn / 1024,
        rss_run_mib=rss_run / 1024,
        ticks=a["ticks"],
        expected=a["expected"],
        delivered=a["delivered"],
        later_instead=a["later"],
        sockets_missing=a["missing_sockets"],
        max_gap_s=a["max_gap"],
        msgs_per_s=msgs / (t_b - t_a),
        web_cpu=(cpu_b - cpu_a) / (t_b - t_a),
        client_cpu=client_cpu / (t_b - t0),
        lag_ms=a["lags"],
        bus_lag_ms=a["bus_lag"],
        tick_done_ms=a["tick_done"],
        admitted_lag_ms=a["admitted_lag"],
        commands=commands,
        commands_total=commands_total,
        closed_by_server=sum(1 for r in records if r.close_code is not None),
        closes=describe_closes(records, t_open),
        tick_intervals_ms=a["tick_intervals"],
        loadavg=" ".join(f"{x:.2f}" for x in os.getloadavg()),
        connect_calls=connect_calls,
    )


def describe_closes(records: list[SocketRecord], t_open: float) -> str:
    by_code: dict[str, list[float]] = {}
    for r in records:
        if r.close_code is not None:
            by_code.setdefault(f"{r.close_code} {r.close_reason}".strip(), []).append(r.closed_at - t_open)
    return (
        "; ".join(
            f"{code} x{len(ts)} ({min(ts):+.1f}..{max(ts):+.1f} s after opening)"
            for code, ts in sorted(by_code.items())
        )
        or "none"
    )


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n## 1. Sockets on one web process (tick {args.tick_ms} ms, rate {args.rate}/min, "
        f"{args.duration:.0f} s open)\n"
    )
    print(
        table(
            [
                "sockets",
                "client procs",
                "in flight",
                "attached",
                "connect s",
                "attach p50/p99 ms",
                "ticks checked",
                "positions due",
                "delivered",
                "missed (later one instead)",
                "sockets that missed any",
                "max gap s",
                "msgs/s",
                "web CPU",
                "msgs per web CPU-s",
                "closed by server",
            ],
            [
                [
                    r.n,
                    r.procs,
                    args.in_flight,
                    r.connected,
                    r.connect_s,
                    f"{r.handshake_p50_ms:.0f} / {r.handshake_p99_ms:.0f}",
                    r.ticks,
                    r.expected,
                    r.delivered,
                    f"{r.expected - r.delivered} ({r.later_instead})",
                    r.sockets_missing,
                    r.max_gap_s,
                    r.msgs_per_s,
                    f"{r.web_cpu:.0%}",
                    r.msgs_per_s / max(r.web_cpu, 1e-9),
                    r.closed_by_server,
                ]
                for r in results
            ],
        )
    )
    print("\n## 2. Lag: promoter publish (advance `at`) -> position received at the socket, ms\n")
    rows = []
    for r in results:
        for name, values in (
            ("position, every socket-tick", r.lag_ms),
            ("last socket of each tick", r.tick_done_ms),
            ("admitted", r.admitted_lag_ms),
            ("advance at the bench's own subscriber", r.bus_lag_ms),
        ):
            rows.append(
                [
                    r.n,
                    name,
                    len(values),
                    percentile(values, 50),
                    percentile(values, 90),
                    percentile(values, 99),
                    max(values, default=math.nan),
                ]
            )
    print(table(["sockets", "what", "samples", "p50", "p90", "p99", "max"], rows))
    print("\n## 3. RSS of the web process\n")
    print(
        table(
            ["sockets", "idle MiB", "with sockets MiB", "KiB/socket", "after pushing MiB", "KiB/socket (run)"],
            [
                [r.n, r.rss_idle_mib, r.rss_conn_mib, r.rss_per_socket_kib, r.rss_run_mib, r.rss_per_socket_run_kib]
                for r in results
            ],
        )
    )
    print(f"\n## 4. Redis commands per tick, every waiting ticket connected ({args.window_ticks}-tick window)\n")
    names = sorted({c for r in results for c in r.commands}, key=lambda c: -max(r.commands.get(c, 0) for r in results))
    print(
        table(
            ["command", *(f"N={r.n}" for r in results)],
            [[c, *(r.commands.get(c, 0.0) for r in results)] for c in names]
            + [["total", *(r.commands_total for r in results)]],
        )
    )
    for r in results:
        print(f"\nN={r.n}: sockets closed by the server: {r.closes}")
        iv = r.tick_intervals_ms
        print(
            f"N={r.n}: promoter publish interval p50 {percentile(iv, 50):.0f} ms, max {max(iv, default=0):.0f} ms; "
            f"load average at the end {r.loadavg}"
        )
    for r in results:
        calls = sorted(r.connect_calls.items(), key=lambda kv: -kv[1])
        print(
            f"N={r.n}: Redis calls while connecting, per socket: {sum(r.connect_calls.values()) / r.n:.2f} ("
            + ", ".join(f"{c} {k / r.n:.2f}" for c, k in calls if k / r.n >= 0.05)
            + ")"
        )
    print(
        "\nclient CPU (all client processes, share of one core): "
        + ", ".join(f"N={r.n}: {r.client_cpu:.0%}" for r in results)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="1000,5000", help="comma-separated socket counts (default 1000,5000)")
    parser.add_argument("--procs", type=int, default=0, help="client processes (default: 2-4 by size)")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=64,
        help="sockets opening at once, over all client processes, each from its handshake to its "
        "first message (default 64, the web process's Redis pool size)",
    )
    parser.add_argument("--rate", type=int, default=600, help="rate_per_minute (default 600: 5 per 500 ms tick)")
    parser.add_argument("--tick-ms", type=int, default=500, help="WR_TICK_MS (default 500)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds the event is open (default 20)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after opening before measuring")
    parser.add_argument("--window-ticks", type=int, default=20, help="ticks in the Redis command window")
    parser.add_argument(
        "--join-via",
        choices=("auto", "http", "lua"),
        default="auto",
        help="POST /api/events/{event}/tickets, join.lua directly, or auto: http up to 1000",
    )
    parser.add_argument(
        "--profile", metavar="PATH", help="run the web process under cProfile; write PATH.N and print its top functions"
    )
    parser.add_argument("--timeout", type=float, default=175.0, help="hard limit for the whole run, seconds")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sockets.split(",") if s.strip()]
    if args.settle + args.window_ticks * args.tick_ms / 1000 > args.duration - 1:
        parser.error("--duration must cover --settle plus the command window plus a second")
    install_deadline(args.timeout)
    deadline = time.time() + args.timeout
    raise_nofile()
    print_machine()
    results = []
    for n in sizes:
        results.append(asyncio.run(scenario(n, args, deadline)))
    report(results, args)
    if args.profile:
        for n in sizes:
            print(f"\n## cProfile of the web process, N={n} (connects included)\n", flush=True)
            pstats.Stats(f"{args.profile}.{n}").sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
