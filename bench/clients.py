"""A pool of WebSocket clients, spread over several processes.

One Python process receiving ~10k messages/s is CPU bound before the server
is, so sockets are dealt round-robin to worker processes (spawned, not
forked: the parent runs an event loop). Each worker records every message
with its receive time and hands the records back when told to stop, or
stops by itself at its deadline or when the parent goes away; the analysis
runs in the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import resource
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.common import BenchTimeout, Stack, raise_nofile


@dataclass
class SocketRecord:
    """One client socket's life, as the worker saw it. Times are time.time()."""

    ticket: str
    started: float = 0.0
    opened: float = 0.0  # handshake done
    attached: float = 0.0  # first message received: the server has read the ticket's place
    error: str = ""
    # (receive time, served_total, position, eta_seconds, waiting) of every `position` message
    positions: list[tuple[float, int, int | None, int | None, int]] = field(default_factory=list)
    admitted_at: float = 0.0
    other: int = 0  # state / notice messages
    close_code: int | None = None  # when the server closed it (not us at the end)
    close_reason: str = ""
    closed_at: float = 0.0


def _worker(
    pipe: Connection, ws_base: str, origin: str, tickets: Sequence[str], concurrency: int, deadline: float
) -> None:
    """A client process: open every socket, record every message, stop when told or at `deadline`."""
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it will tell us or terminate us
    with contextlib.suppress(EOFError, BrokenPipeError):  # the parent is gone
        asyncio.run(_worker_main(pipe, ws_base, origin, tickets, concurrency, deadline))


async def _worker_main(
    pipe: Connection, ws_base: str, origin: str, tickets: Sequence[str], concurrency: int, deadline: float
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    records = [SocketRecord(t) for t in tickets]
    sem = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    attempted = 0
    all_attempted = asyncio.Event()
    sockets: list[Any] = []

    def attempt_done() -> None:
        nonlocal attempted
        attempted += 1
        if attempted == len(records):
            all_attempted.set()

    def handle(rec: SocketRecord, raw: str | bytes, now: float) -> None:
        m = json.loads(raw)
        kind = m.get("type")
        if kind == "position":
            rec.positions.append((now, m["served_total"], m["position"], m["eta_seconds"], m["waiting"]))
        elif kind == "admitted":
            rec.admitted_at = now
        else:
            rec.other += 1

    def closed(rec: SocketRecord, ws: Any) -> None:
        if not stop.is_set():  # closed by the server (or the connection broke), not by us
            rec.close_code = ws.close_code if ws.close_code is not None else -1
            rec.close_reason = ws.close_reason or ""
            rec.closed_at = time.time()

    async def run(rec: SocketRecord) -> None:
        # in flight (counted by the semaphore) from the handshake until the first message: the
        # server's work for a new socket is the handshake plus reading where its ticket stands
        async with sem:
            rec.started = time.time()
            try:
                ws = await connect(
                    f"{ws_base}/ws/tickets/{rec.ticket}",
                    origin=origin,  # type: ignore[arg-type]
                    compression=None,
                    ping_interval=None,
                    open_timeout=60,
                    close_timeout=2,
                )
            except Exception as exc:
                rec.error = f"{type(exc).__name__}: {exc}"[:200]
                attempt_done()
                return
            rec.opened = time.time()
            sockets.append(ws)
            try:
                first = await ws.recv()
            except ConnectionClosed:
                closed(rec, ws)
                attempt_done()
                return
            rec.attached = time.time()
            handle(rec, first, rec.attached)
        attempt_done()
        try:
            async for raw in ws:
                handle(rec, raw, time.time())
        except ConnectionClosed:
            pass
        closed(rec, ws)

    tasks = [asyncio.create_task(run(r)) for r in records]
    time_left = max(0.1, deadline - time.time())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_attempted.wait(), time_left)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    pipe.send(("connected", sum(1 for r in records if r.attached), usage.ru_utime + usage.ru_stime))
    # wait for "stop" without blocking the loop (poll the pipe)
    while time.time() < deadline:
        if pipe.poll():
            pipe.recv()
            break
        await asyncio.sleep(0.05)
    stop.set()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    await asyncio.gather(*(_close(ws) for ws in sockets), return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("results", records, cpu))


async def _close(ws: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 3)


class ClientPool:
    """Sockets for `tickets`, spread round-robin over `procs` worker processes."""

    def __init__(
        self, stack: Stack, tickets: Sequence[str], procs: int, concurrency: int = 16, max_seconds: float = 170
    ) -> None:
        self.stack = stack
        self.tickets = list(tickets)
        self.procs = max(1, min(procs, len(self.tickets)))
        self.concurrency = concurrency
        self.deadline = time.time() + max_seconds
        self.workers: list[tuple[Any, Connection]] = []
        self.connected = 0
        self.client_cpu_at_connect = 0.0

    def __enter__(self) -> ClientPool:
        ctx = mp.get_context("spawn")
        for i in range(self.procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker,
                daemon=True,
                args=(
                    child,
                    self.stack.ws_base,
                    self.stack.public_url,
                    self.tickets[i :: self.procs],
                    self.concurrency,
                    self.deadline,
                ),
            )
            proc.start()
            child.close()
            self.workers.append((proc, parent))
        return self

    def __exit__(self, *exc: object) -> None:
        for proc, pipe in self.workers:
            with contextlib.suppress(OSError):
                pipe.close()
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    async def _recv(self, pipe: Connection) -> Any:
        while not pipe.poll():
            if time.time() > self.deadline + 15:
                raise BenchTimeout("a client worker did not answer")
            await asyncio.sleep(0.02)
        return pipe.recv()

    async def wait_connected(self) -> int:
        replies = [await self._recv(pipe) for _, pipe in self.workers]
        self.connected = sum(r[1] for r in replies)
        self.client_cpu_at_connect = sum(r[2] for r in replies)
        return self.connected

    async def results(self) -> tuple[list[SocketRecord], float]:
        """Stop every worker; all records (in ticket order) and the clients' CPU seconds in total."""
        for _, pipe in self.workers:
            pipe.send("stop")
        records: dict[str, SocketRecord] = {}
        cpu = 0.0
        for _, pipe in self.workers:
            _, recs, worker_cpu = await self._recv(pipe)
            cpu += worker_cpu
            records.update((r.ticket, r) for r in recs)
        return [records[t] for t in self.tickets], cpu
