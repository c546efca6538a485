"""Web CPU per waiting user at 1 s freshness: status polling versus WebSocket push, side by side.

One stack (redis-server, one `waiting-room web`, one promoter ticking every second), one event with
USERS waiting tickets, admitting one a second so that every position changes on every tick.

  push: every user holds a WebSocket (client processes from bench.clients); for WINDOW seconds we
        count the `position` messages delivered and the web process's CPU;
  poll: the sockets closed, every user asks GET /api/tickets/{ticket} once a second (keep-alive
        connections, a small raw HTTP/1.1 client) for WINDOW seconds; we count the answers and the
        web process's CPU.

One pushed position and one answered poll each give one user one second of freshness, so the
figure is web CPU per position pushed versus per poll answered, and their ratio.

    python -m bench.poll_push                       # 2,000 users, 10 s windows
    python -m bench.poll_push --users 500 --window 5
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter

import httpx

from bench.clients import ClientPool
from bench.common import HOST, Stack, cpu_seconds, install_deadline, join_lua, machine, print_machine, table


async def poll_all(port: int, tickets: list[str], seconds: float, conns: int) -> tuple[Counter[int], float]:
    """Every ticket polled once a second for `seconds`; the answers by status and the time taken."""
    statuses: Counter[int] = Counter()
    groups = [tickets[i::conns] for i in range(conns)]
    start = time.monotonic()

    async def one_connection(group: list[str]) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for second in range(int(seconds)):
                for ticket in group:
                    writer.write(f"GET /api/tickets/{ticket} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head.split(b" ", 2)[1])
                    length = next(
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                    await reader.readexactly(length)
                    statuses[status] += 1
                await asyncio.sleep(max(0.0, start + second + 1 - time.monotonic()))
        finally:
            writer.close()

    await asyncio.gather(*(one_connection(g) for g in groups if g))
    return statuses, time.monotonic() - start


async def run(args: argparse.Namespace) -> None:
    with Stack(tick_ms=1000) as stack:
        assert stack.web is not None
        pid = stack.web.pid
        async with httpx.AsyncClient(timeout=30) as http:
            await stack.put_event(http, status="paused", rate_per_minute=60, abandon_after_seconds=3600)
            joined = await join_lua(stack, args.users)
            tickets = [t for t, _ in joined]
            await stack.set_status(http, "open")

            # push
            with ClientPool(stack, tickets, procs=2, concurrency=32, max_seconds=args.window + 120) as pool:
                connected = await pool.wait_connected()
                await asyncio.sleep(3)  # every socket has had its first position and a tick or two
                t_a, cpu_a = time.time(), cpu_seconds(pid)
                await asyncio.sleep(args.window)
                t_b, cpu_b = time.time(), cpu_seconds(pid)
                records, _ = await pool.results()
            pushed = sum(1 for r in records for t, *_ in r.positions if t_a <= t <= t_b)
            push_cpu = cpu_b - cpu_a
            await asyncio.sleep(2)  # the closes are handled before the poll window starts

            # poll
            cpu_c = cpu_seconds(pid)
            statuses, took = await poll_all(stack.port, tickets, args.window, args.poll_conns)
            poll_cpu = cpu_seconds(pid) - cpu_c
    answered = statuses.get(200, 0)
    per_push = push_cpu / max(1, pushed) * 1e6
    per_poll = poll_cpu / max(1, answered) * 1e6
    print()
    print(
        table(
            [
                "way",
                "users",
                "window s",
                "fresh answers",
                "per user per s",
                "web CPU s",
                "web CPU % of a core",
                "µs each",
            ],
            [
                (
                    "push",
                    connected,
                    t_b - t_a,
                    pushed,
                    pushed / connected / (t_b - t_a),
                    push_cpu,
                    push_cpu / (t_b - t_a) * 100,
                    per_push,
                ),
                (
                    "poll",
                    len(tickets),
                    took,
                    answered,
                    answered / len(tickets) / took,
                    poll_cpu,
                    poll_cpu / took * 100,
                    per_poll,
                ),
            ],
        )
    )
    print(f"\npoll answers by status: {dict(statuses)}")
    print(f"web CPU per fresh answer, poll ÷ push: {per_poll / per_push:.1f}x")
    print(f"loadavg at the end: {machine()['loadavg']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument("--poll-conns", type=int, default=50, help="keep-alive connections the pollers share")
    args = parser.parse_args()
    install_deadline(2 * args.window + 240)
    print_machine()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
