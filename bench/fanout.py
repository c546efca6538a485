"""The fan-out against its floor: ours and a bare Starlette app, same sockets, same run.

For each N, twice, one after the other on the same uvicorn options:

  ours  a fresh stack (own redis-server, `waiting-room web`, `waiting-room
        promoter`), a paused event with N tickets, N sockets, then the event
        opens at a rate that moves every position every tick;
  bare  `bench.bare_app`: N sockets, then one `send_text` per socket per tick.

Measured over a window after a settling time: positions received by the
clients, the web process's CPU for them (pushes per web CPU-second), positions
per socket per second (mean and the worst socket) and sockets closed by the
server; and the web process's RSS per socket once all are open, before any
push (the bare app is then a plain echo app). Ratios are ours / bare.

    python -m bench.fanout                                    # 5,000 (0.5 s tick) and 19,500 (1 s tick)
    python -m bench.fanout --sockets 5000 --tick-ms 500
    python -m bench.fanout --sockets 19500 --tick-ms 1000 --procs 4
    python -m bench.fanout --sockets 5000 --profile /tmp/fanout.prof   # ours under cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from bench.clients import ClientPool, SocketRecord
from bench.common import (
    HOST,
    BusTap,
    Stack,
    cpu_seconds,
    install_deadline,
    join,
    print_machine,
    raise_nofile,
    rss_kib,
    table,
)
from waiting_room.store.embedded import free_port


@dataclass
class Side:
    name: str
    n: int
    connected: int
    rss_idle_kib: int
    rss_conn_kib: int
    window_s: float
    web_cpu_s: float
    pushes: int
    per_socket_mean: float
    per_socket_min: float
    closed: int
    loadavg: str
    advances: int = 0  # ours: `advance` messages the promoter published in the window

    @property
    def pushes_per_cpu_s(self) -> float:
        return self.pushes / max(self.web_cpu_s, 1e-9)

    @property
    def rss_per_socket_kib(self) -> float:
        return (self.rss_conn_kib - self.rss_idle_kib) / max(1, self.connected)


@dataclass
class BareServer:
    """`bench.bare_app` as a subprocess (what ClientPool needs of a server: its URLs)."""

    tick_ms: int
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def public_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def __enter__(self) -> BareServer:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="wr-bare-", suffix=".log")
        argv = [sys.executable, "-m", "bench.bare_app", "--port", str(self.port), "--tick-ms", str(self.tick_ms)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.public_url}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("the bare app did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


async def warm_up(ws_base: str, origin: str, tickets: list[str]) -> None:
    """Open and close a few sockets first, so one-off allocations do not count as per-socket cost."""
    for ticket in tickets:
        async with connect(
            f"{ws_base}/ws/tickets/{ticket}",
            origin=origin,  # type: ignore[arg-type]
            compression=None,
            ping_interval=None,
        ) as ws:
            await asyncio.wait_for(ws.recv(), 5)


def count(records: list[SocketRecord], t_a: float, t_b: float) -> tuple[int, float, float]:
    """Positions received in [t_a, t_b]; and per socket per second, mean and worst, of the window's ticks.

    A tick belongs to the window if the first socket to hear of it (its `served_total`) did so inside
    it; a socket is credited with that tick if it got that position, whenever (a socket at the end of a
    fan-out hears of the window's last tick just after the window closed; counting receipts by time
    would charge it a missing position for where it sits in the loop). Only sockets still waiting at
    t_b count: an admitted socket rightly gets no more positions."""
    first: dict[int, float] = {}
    total = 0
    for rec in records:
        for t, served, *_ in rec.positions:
            first[served] = min(t, first.get(served, t))
            total += t_a <= t <= t_b
    ticks = {served for served, t in first.items() if t_a <= t <= t_b}
    rates = []
    for rec in records:
        if rec.attached and rec.close_code is None and not (rec.admitted_at and rec.admitted_at <= t_b):
            got = len(ticks.intersection(served for _, served, *_ in rec.positions))
            rates.append(got / (t_b - t_a))
    return total, sum(rates) / max(1, len(rates)), min(rates, default=0.0)


def procs_for(n: int, args: argparse.Namespace) -> int:
    return int(args.procs or max(2, min(6, -(-n // 4000))))


async def run_ours(n: int, args: argparse.Namespace, tick_ms: int, deadline: float) -> Side:
    profile = Path(f"{args.profile}.{n}") if args.profile else None
    with Stack(tick_ms=tick_ms, web_profile=profile) as stack:
        assert stack.web is not None
        pid = stack.web.pid
        tap = BusTap(stack.redis_url)
        await tap.start()
        async with httpx.AsyncClient(timeout=30) as http:
            # every position moves every tick: at least one admission per tick
            rate = max(120, round(2 * 60_000 / tick_ms))
            await stack.put_event(http, status="paused", rate_per_minute=rate, abandon_after_seconds=3600)
            tickets = [t for t, _ in (await join(stack, n, "lua"))[0]]
            await warm_up(stack.ws_base, stack.public_url, tickets[-10:])
            await asyncio.sleep(1.5)
            rss_idle = rss_kib(pid)
            with ClientPool(
                stack, tickets, procs_for(n, args), args.in_flight, max_seconds=deadline - time.time() - 10
            ) as pool:
                connected = await pool.wait_connected()
                await asyncio.sleep(2)
                rss_conn = rss_kib(pid)
                await stack.set_status(http, "open")
                await asyncio.sleep(args.settle)
                t_a, cpu_a = time.time(), cpu_seconds(pid)
                if profile is not None:
                    os.kill(pid, signal.SIGUSR1)  # profile the window only (bench/profile_web.py)
                await asyncio.sleep(args.window)
                if profile is not None:
                    os.kill(pid, signal.SIGUSR2)
                t_b, cpu_b = time.time(), cpu_seconds(pid)
                records, _ = await pool.results()
        await tap.stop()
    pushes, mean, worst = count(records, t_a, t_b)
    closed = sum(1 for r in records if r.close_code is not None)
    advances = sum(1 for a in tap.advances if t_a <= a.at <= t_b)
    window, cpu = t_b - t_a, cpu_b - cpu_a
    return Side("ours", n, connected, rss_idle, rss_conn, window, cpu, pushes, mean, worst, closed, load(), advances)


async def run_bare(n: int, args: argparse.Namespace, tick_ms: int, deadline: float) -> Side:
    with BareServer(tick_ms) as bare:
        assert bare.proc is not None
        pid = bare.proc.pid
        tickets = [f"bare.{i}" for i in range(n)]
        async with httpx.AsyncClient(timeout=30) as http:
            await warm_up(bare.ws_base, bare.public_url, tickets[:10])
            await asyncio.sleep(1.5)
            rss_idle = rss_kib(pid)
            with ClientPool(
                bare,  # type: ignore[arg-type]
                tickets,
                procs_for(n, args),
                args.in_flight,
                max_seconds=deadline - time.time() - 10,
            ) as pool:
                connected = await pool.wait_connected()
                await asyncio.sleep(2)
                rss_conn = rss_kib(pid)
                (await http.post(f"{bare.public_url}/start")).raise_for_status()
                await asyncio.sleep(args.settle)
                t_a, cpu_a = time.time(), cpu_seconds(pid)
                await asyncio.sleep(args.window)
                t_b, cpu_b = time.time(), cpu_seconds(pid)
                (await http.post(f"{bare.public_url}/stop")).raise_for_status()
                records, _ = await pool.results()
    pushes, mean, worst = count(records, t_a, t_b)
    closed = sum(1 for r in records if r.close_code is not None)
    return Side("bare", n, connected, rss_idle, rss_conn, t_b - t_a, cpu_b - cpu_a, pushes, mean, worst, closed, load())


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ratio(ours: Side, bare: Side, measure: str) -> float:
    return float(getattr(ours, measure)) / max(float(getattr(bare, measure)), 1e-9)


def report(pairs: list[tuple[Side, Side, int]]) -> None:
    print("\n## Fan-out: ours and the bare Starlette app, same run\n")
    rows = []
    for ours, bare, tick_ms in pairs:
        for side in (bare, ours):
            rows.append(
                [
                    side.n,
                    tick_ms,
                    side.name,
                    side.connected,
                    side.pushes,
                    f"{side.web_cpu_s / side.window_s:.0%}",
                    side.pushes_per_cpu_s,
                    f"{side.per_socket_mean:.3f}",
                    f"{side.per_socket_min:.3f}",
                    side.closed,
                    side.advances if side.name == "ours" else "-",
                    side.rss_per_socket_kib,
                    side.loadavg,
                ]
            )
    print(
        table(
            [
                "sockets",
                "tick ms",
                "app",
                "open",
                "positions in window",
                "web CPU",
                "pushes per web CPU-s",
                "per socket per s (mean)",
                "(worst socket)",
                "closed by server",
                "ticks published",
                "RSS KiB/socket",
                "load avg at end",
            ],
            rows,
        )
    )
    print()
    print(
        table(
            ["sockets", "pair", "pushes per CPU-s ours / bare", "RSS per socket ours / bare"],
            [[o.n, i + 1, f"{cpu_ratio(o, b):.2f}", f"{rss_ratio(o, b):.2f}"] for i, (o, b, _) in enumerate(pairs)],
        )
    )
    for n in sorted({o.n for o, _, _ in pairs}):
        mine = [(o, b) for o, b, _ in pairs if o.n == n]
        print(
            f"\nN={n}: median over {len(mine)} pair(s): pushes per CPU-s ours / bare "
            f"{statistics.median(cpu_ratio(o, b) for o, b in mine):.2f}, "
            f"RSS per socket ours / bare {statistics.median(rss_ratio(o, b) for o, b in mine):.2f}"
        )


def cpu_ratio(ours: Side, bare: Side) -> float:
    return ours.pushes_per_cpu_s / max(bare.pushes_per_cpu_s, 1e-9)


def rss_ratio(ours: Side, bare: Side) -> float:
    return ours.rss_per_socket_kib / max(bare.rss_per_socket_kib, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="5000,19500", help="comma-separated socket counts (default 5000,19500)")
    parser.add_argument(
        "--tick-ms", default="", help="ticks per size, comma-separated (default: 500 below 10,000 sockets, else 1000)"
    )
    parser.add_argument("--procs", type=int, default=0, help="client processes (default: one per 4,000 sockets, 2-6)")
    parser.add_argument("--in-flight", type=int, default=64, help="sockets opening at once, over all clients")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of pushing before the window")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured (default 10)")
    parser.add_argument("--repeat", type=int, default=1, help="bare/ours pairs per size (the machine is noisy)")
    parser.add_argument("--only", choices=("ours", "bare"), help="run one side only (no ratio)")
    parser.add_argument(
        "--profile", metavar="PATH", help="profile our web process over the window (cProfile); write PATH.N"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="hard limit for the whole run, seconds")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sockets.split(",") if s.strip()]
    ticks = [int(t) for t in args.tick_ms.split(",") if t.strip()] or [500 if n < 10_000 else 1000 for n in sizes]
    if len(ticks) == 1:
        ticks *= len(sizes)
    if args.profile:
        os.environ["BENCH_PROFILE_WINDOW"] = "1"
    install_deadline(args.timeout)
    deadline = time.time() + args.timeout
    raise_nofile()
    print_machine()
    pairs = []
    for n, tick_ms in [pair for pair in zip(sizes, ticks, strict=True) for _ in range(args.repeat)]:
        bare = ours = None
        if args.only != "ours":
            bare = asyncio.run(run_bare(n, args, tick_ms, deadline))
            print(f"  N={n} bare: {bare}", flush=True)
        if args.only != "bare":
            ours = asyncio.run(run_ours(n, args, tick_ms, deadline))
            print(f"  N={n} ours: {ours}", flush=True)
        if ours is not None and bare is not None:
            pairs.append((ours, bare, tick_ms))
    if pairs:
        report(pairs)
    if args.profile:
        for n in sizes:
            print(f"\n## cProfile of our web process, N={n}, over the measured window\n", flush=True)
            pstats.Stats(f"{args.profile}.{n}").sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
