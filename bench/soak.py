"""Soak: one web process holding ~19,500 WebSockets for minutes while the line moves.

A private stack (own redis-server, one `waiting-room web` on a 1 s tick, one
`waiting-room promoter`), an event admitting `--rate` a minute, `--sockets`
waiting tickets each with a WebSocket held by a pool of client processes, and
`--rate` new tickets a minute joining (each with its socket) so the number of
sockets stays level while the line moves. Every `--sample` seconds the web
process's RSS (/proc/PID/status), open descriptors (/proc/PID/fd) and asyncio
tasks (`wr_tasks` on /metrics) are read. Clients count every close by code: a
socket is expected to end only after its `admitted` (the page would redirect);
any other close, or a connection that fails, is unexpected.

    python -m bench.soak                          # 19,500 sockets, 10 minutes
    python -m bench.soak --sockets 2000 --minutes 1

Criteria printed at the end: RSS growth from the end of the warm-up to the
end under 5 %, no unexpected close, descriptors and tasks not growing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import re
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.common import (
    EVENT,
    Stack,
    cpu_seconds,
    install_deadline,
    join_lua,
    print_machine,
    raise_nofile,
    rss_kib,
    table,
)
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts

IN_FLIGHT_SLACK = 10  # sockets mid-handshake or mid-close at a sample, at most
TASKS_LINE = re.compile(r"^wr_tasks (\S+)$", re.MULTILINE)
CONNS_LINE = re.compile(r"^wr_process_connections\{[^}]*\} (\S+)$", re.MULTILINE)


# --- client side: one process of many -------------------------------------------------


@dataclass
class ClientStats:
    """What one client process saw so far (counters only: 10 minutes of every message would not fit)."""

    attempted: int = 0
    attached: int = 0
    open: int = 0
    positions: int = 0
    admitted: int = 0
    other: int = 0
    connect_errors: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)  # closed by the server, by "code (after admitted?)"
    stale: int = 0  # open, not admitted, no position for 30 s while the line moves


def _worker(pipe: Connection, ws_base: str, origin: str, concurrency: int, deadline: float) -> None:
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(EOFError, BrokenPipeError, OSError):
        asyncio.run(_worker_main(pipe, ws_base, origin, concurrency, deadline))


async def _worker_main(pipe: Connection, ws_base: str, origin: str, concurrency: int, deadline: float) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    stats = ClientStats()
    sem = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    sockets: set[Any] = set()
    last_position: dict[str, float] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def run(ticket: str) -> None:
        stats.attempted += 1
        async with sem:
            try:
                ws = await connect(
                    f"{ws_base}/ws/tickets/{ticket}",
                    origin=origin,  # type: ignore[arg-type]
                    compression=None,
                    ping_interval=None,  # the server pings; the library answers
                    open_timeout=60,
                    close_timeout=2,
                    max_queue=4,
                )
            except Exception as exc:
                stats.connect_errors[type(exc).__name__] += 1
                return
            sockets.add(ws)
            stats.open += 1
            try:
                first = await ws.recv()
            except ConnectionClosed:
                first = None
        admitted = False
        try:
            if first is not None:
                stats.attached += 1
                admitted = handle(ticket, first)
                if not admitted:
                    async for raw in ws:
                        if handle(ticket, raw):
                            admitted = True
                            break
        except ConnectionClosed:
            pass
        finally:
            last_position.pop(ticket, None)
            stats.open -= 1
            sockets.discard(ws)
        if admitted:  # the page redirects: close as a browser leaving would
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3)
        elif not stop.is_set():
            code = ws.close_code if ws.close_code is not None else -1
            stats.closes[str(code)] += 1

    def handle(ticket: str, raw: str | bytes) -> bool:
        kind = json.loads(raw).get("type")
        if kind == "position":
            stats.positions += 1
            last_position[ticket] = time.monotonic()
        elif kind == "admitted":
            stats.admitted += 1
            return True
        else:
            stats.other += 1
        return False

    def snapshot() -> ClientStats:
        now = time.monotonic()
        stats.stale = sum(1 for t in last_position.values() if now - t > 30)
        return stats

    while time.time() < deadline:
        if not pipe.poll():
            await asyncio.sleep(0.05)
            continue
        command, body = pipe.recv()
        if command == "add":
            for ticket in body:
                task = asyncio.create_task(run(ticket))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        elif command == "report":
            pipe.send(snapshot())
        elif command == "stop":
            break
    stop.set()
    final = snapshot()
    await asyncio.gather(*(_close(ws) for ws in list(sockets)), return_exceptions=True)
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(final)


async def _close(ws: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 3)


class Clients:
    """Client processes (spawned); tickets are dealt round-robin, stats summed on request."""

    def __init__(self, stack: Stack, procs: int, in_flight: int, deadline: float) -> None:
        ctx = mp.get_context("spawn")
        self.workers: list[tuple[Any, Connection]] = []
        self.next = 0
        for _ in range(procs):
            parent, child = ctx.Pipe()
            args = (child, stack.ws_base, stack.public_url, max(1, in_flight // procs), deadline)
            proc = ctx.Process(target=_worker, daemon=True, args=args)
            proc.start()
            child.close()
            self.workers.append((proc, parent))

    def add(self, tickets: list[str]) -> None:
        share: list[list[str]] = [[] for _ in self.workers]
        for ticket in tickets:
            share[self.next % len(self.workers)].append(ticket)
            self.next += 1
        for (_, pipe), part in zip(self.workers, share, strict=True):
            if part:
                pipe.send(("add", part))

    async def _ask(self, command: str) -> ClientStats:
        for _, pipe in self.workers:
            pipe.send((command, None))
        total = ClientStats()
        for _, pipe in self.workers:
            limit = time.monotonic() + 30
            while not pipe.poll():
                if time.monotonic() > limit:
                    raise TimeoutError("a client process did not answer")
                await asyncio.sleep(0.02)
            s: ClientStats = pipe.recv()
            for name in ("attempted", "attached", "open", "positions", "admitted", "other", "stale"):
                setattr(total, name, getattr(total, name) + getattr(s, name))
            total.connect_errors.update(s.connect_errors)
            total.closes.update(s.closes)
        return total

    async def report(self) -> ClientStats:
        return await self._ask("report")

    async def stop(self) -> ClientStats:
        return await self._ask("stop")

    def close(self) -> None:
        for proc, pipe in self.workers:
            with contextlib.suppress(OSError):
                pipe.close()
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


# --- the web process, seen from outside ------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the event opened
    rss_mib: float
    fds: int
    tasks: int  # the latest answered scrape, -1 before the first
    task_sockets: int  # the web process's own socket count in that same scrape
    sockets: int  # open on the client side
    positions: int  # received so far, all sockets
    admitted: int
    unexpected: int
    stale: int
    web_cpu_s: float
    loadavg: float


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class TaskGauge:
    """`wr_tasks` and the sockets it goes with, scraped in the background.

    Under a full fan-out on a starved CPU the web process answered /metrics in 27-45 s: the
    scrape must neither hold up the samples and joins nor give up before the answer.
    """

    def __init__(self, http: httpx.AsyncClient, stack: Stack, every: float) -> None:
        self.http, self.url, self.every = http, f"{stack.public_url}/metrics", every
        self.latest = (-1, 0)  # (tasks, sockets of this process), -1 until a first answer
        self.answers = self.misses = 0
        self.slowest = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                text = (await self.http.get(self.url, timeout=120)).text
            except httpx.HTTPError:
                self.misses += 1
                continue
            self.slowest = max(self.slowest, time.monotonic() - started)
            tasks, conns = TASKS_LINE.search(text), CONNS_LINE.search(text)
            if tasks is None:
                raise RuntimeError("the web process's /metrics has no wr_tasks")
            self.latest = (int(float(tasks.group(1))), int(float(conns.group(1))) if conns else 0)
            self.answers += 1
            await asyncio.sleep(max(0.0, self.every - (time.monotonic() - started)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# --- the run ---------------------------------------------------------------------------


async def soak(args: argparse.Namespace, deadline: float) -> None:
    procs = args.procs or max(2, math.ceil(args.sockets / 5000))
    joins_per_second = args.rate / 60  # as many new tickets as the promoter admits
    with Stack(tick_ms=1000) as stack:
        assert stack.web is not None
        pid = stack.web.pid
        redis = Redis.from_url(stack.redis_url, decode_responses=True)
        queue = Queue(redis, Scripts.register(redis), stack.public_url)
        clients = Clients(stack, procs, args.in_flight, deadline)
        samples: list[Sample] = []
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                await stack.put_event(http, status="paused", rate_per_minute=args.rate, abandon_after_seconds=3600)
                started = time.monotonic()
                tickets = [t for t, _ in await join_lua(stack, args.sockets)]
                print(f"{len(tickets):,} tickets joined in {time.monotonic() - started:.1f} s", flush=True)
                started = time.monotonic()
                clients.add(tickets)
                while True:
                    s = await clients.report()
                    done = s.attached + sum(s.connect_errors.values()) + sum(s.closes.values())
                    if done >= len(tickets) or time.monotonic() - started > args.connect_timeout:
                        break
                    await asyncio.sleep(1)
                print(
                    f"{s.attached:,} sockets attached in {time.monotonic() - started:.1f} s over {procs} client "
                    f"processes; connect errors {dict(s.connect_errors) or 'none'}; fds {fd_count(pid):,}",
                    flush=True,
                )
                await stack.set_status(http, "open")
                t_open = time.monotonic()
                end = t_open + args.minutes * 60
                next_sample = t_open
                gauge = TaskGauge(http, stack, args.sample)
                gauge.start()
                joined = 0
                print(
                    "\n| t s | RSS MiB | fds | tasks | sockets | positions/socket/s | admitted | unexpected closes "
                    "| stale | web CPU | load |\n|---|---|---|---|---|---|---|---|---|---|---|",
                    flush=True,
                )
                while time.monotonic() < end:
                    fresh = int((time.monotonic() - t_open) * joins_per_second) - joined
                    new = [(await queue.join(EVENT, secrets.token_urlsafe(18)))[0].ticket for _ in range(fresh)]
                    clients.add(new)
                    joined += len(new)
                    if time.monotonic() >= next_sample:
                        samples.append(await sample(gauge, pid, clients, t_open))
                        print_sample(samples)
                        next_sample += args.sample
                    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t_open) % 1.0))
                samples.append(await sample(gauge, pid, clients, t_open))
                print_sample(samples)
                await gauge.stop()
                print(
                    f"/metrics: {gauge.answers} answers, {gauge.misses} timeouts, slowest {gauge.slowest:.1f} s",
                    flush=True,
                )
                final = await clients.stop()
        finally:
            clients.close()
            await redis.aclose()
    summarise(samples, final, args, len(tickets))


async def sample(gauge: TaskGauge, pid: int, clients: Clients, t_open: float) -> Sample:
    s = await clients.report()
    return Sample(
        t=time.monotonic() - t_open,
        rss_mib=rss_kib(pid) / 1024,
        fds=fd_count(pid),
        tasks=gauge.latest[0],
        task_sockets=gauge.latest[1],
        sockets=s.open,
        positions=s.positions,
        admitted=s.admitted,
        unexpected=sum(s.closes.values()) + sum(s.connect_errors.values()),
        stale=s.stale,
        web_cpu_s=cpu_seconds(pid),
        loadavg=os.getloadavg()[0],
    )


def print_sample(samples: list[Sample]) -> None:
    s = samples[-1]
    rate = cpu = math.nan
    if len(samples) > 1:
        p = samples[-2]
        dt = s.t - p.t
        rate = (s.positions - p.positions) / dt / max(1, (s.sockets + p.sockets) / 2)
        cpu = (s.web_cpu_s - p.web_cpu_s) / dt
    print(
        f"| {s.t:.0f} | {s.rss_mib:.1f} | {s.fds:,} | {s.tasks:,} | {s.sockets:,} | {rate:.2f} | {s.admitted:,} "
        f"| {s.unexpected} | {s.stale} | {cpu:.0%} | {s.loadavg:.2f} |",
        flush=True,
    )


def at(samples: list[Sample], t: float) -> Sample:
    """The first sample at or after `t` seconds (the last one if none)."""
    return next((s for s in samples if s.t >= t), samples[-1])


def summarise(samples: list[Sample], final: ClientStats, args: argparse.Namespace, initial: int) -> None:
    answered = [s for s in samples if s.tasks >= 0]  # wr_tasks comes late from a busy process
    warm = at(samples, args.warmup * 60)
    last = samples[-1]
    first = samples[0]
    growth = (last.rss_mib - warm.rss_mib) / warm.rss_mib
    window = last.t - warm.t
    per_socket = (last.positions - warm.positions) / max(1e-9, window) / max(1, (last.sockets + warm.sockets) / 2)
    cpu = (last.web_cpu_s - warm.web_cpu_s) / max(1e-9, window)
    unexpected = sum(final.closes.values()) + sum(final.connect_errors.values())
    print(f"\n## Soak: {initial:,} sockets, {last.t / 60:.1f} minutes open, rate {args.rate}/min, tick 1 s\n")
    print(
        table(
            ["figure", f"start (t={first.t:.0f} s)", f"after warm-up (t={warm.t:.0f} s)", f"end (t={last.t:.0f} s)"],
            [
                ["web RSS MiB", first.rss_mib, warm.rss_mib, last.rss_mib],
                ["web open fds", first.fds, warm.fds, last.fds],
                ["web asyncio tasks (latest scrape)", first.tasks, warm.tasks, last.tasks],
                ["web sockets (same scrape)", first.task_sockets, warm.task_sockets, last.task_sockets],
                ["sockets open (clients)", first.sockets, warm.sockets, last.sockets],
                ["admitted so far", first.admitted, warm.admitted, last.admitted],
            ],
        )
    )
    # a socket's descriptor and tasks come and go with it, and a few handshakes of the joining tickets
    # are in flight at any sample: growth counts beyond the sockets' own share plus that slack
    drift = max(0, last.sockets - warm.sockets)
    fd_growth = last.fds - warm.fds
    task_warm, task_last = (at(answered, args.warmup * 60), answered[-1]) if answered else (warm, last)
    per_conn = round(task_warm.tasks / max(1, task_warm.task_sockets))  # a socket's own tasks
    # the tasks that are not some open socket's own: these must not grow
    overhead_warm = task_warm.tasks - per_conn * task_warm.task_sockets
    overhead_last = task_last.tasks - per_conn * task_last.task_sockets
    print(
        f"\nRSS growth after warm-up: {growth:+.2%} (criterion < 5 %: {'held' if growth < 0.05 else 'FAILED'})\n"
        f"fds: {warm.fds:,} -> {last.fds:,} ({fd_growth:+,}; sockets {last.sockets - warm.sockets:+,}) "
        f"criterion no growth: {'held' if fd_growth <= drift + IN_FLIGHT_SLACK else 'FAILED'}\n"
        f"tasks (scrapes answered in {len(answered)} of {len(samples)} samples): {task_warm.tasks:,} with "
        f"{task_warm.task_sockets:,} sockets -> {task_last.tasks:,} with {task_last.task_sockets:,}; "
        f"{per_conn} per socket; the rest {overhead_warm:+,} -> {overhead_last:+,} criterion no growth: "
        f"{'held' if overhead_last - overhead_warm <= IN_FLIGHT_SLACK * per_conn else 'FAILED'}\n"
        f"positions received per socket per second after warm-up: {per_socket:.2f}; web CPU {cpu:.0%} of a core\n"
        f"closes: {final.admitted:,} after `admitted` (expected); unexpected {unexpected} "
        f"(by code {dict(final.closes) or 'none'}; connect errors {dict(final.connect_errors) or 'none'}) "
        f"criterion: {'held' if unexpected == 0 else 'FAILED'}\n"
        f"sockets with no position for 30 s at the end: {final.stale}; other messages {final.other:,}\n"
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=19_500, help="waiting tickets with a socket (default 19,500)")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes the event stays open (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes before the RSS reference (default 2)")
    parser.add_argument(
        "--rate",
        type=int,
        default=30,
        help="rate_per_minute, also the join rate (default 30: every position moves every 2 s)",
    )
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--procs", type=int, default=0, help="client processes (default: one per 5,000 sockets)")
    parser.add_argument("--in-flight", type=int, default=64, help="sockets opening at once, all processes")
    parser.add_argument("--connect-timeout", type=float, default=300.0, help="seconds to open every socket")
    args = parser.parse_args()
    if args.warmup >= args.minutes:
        parser.error("--warmup must be shorter than --minutes")
    budget = args.minutes * 60 + args.connect_timeout + 180  # joins, start-up and clean-up
    install_deadline(budget)
    raise_nofile()
    print_machine()
    asyncio.run(soak(args, time.time() + budget))


if __name__ == "__main__":
    main()
