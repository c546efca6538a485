"""What the gate costs on the paths that must stay cheap: unguarded requests and live sessions.

    python -m bench.gate [--calls 20000] [--requests 1000] [--rounds 3] [--concurrency 16] [--timeout 120]

Two measures of the same tiny app, bare and wrapped in AdmissionGate whose
waiting room is unreachable (bench/gate_app.py):

1. in process: CPU time per request of the ASGI app called directly (no
   server, no client), which a loaded machine disturbs far less than wall time;
2. over HTTP: both served with the same uvicorn options, driven round-robin so
   load drifts hit all alike, requests per second.

Both print the ratio to the bare app. Any non-200 through the gate would mean
it tried the network; the run fails then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import HOST, install_deadline, print_machine, table
from waiting_room.gate.session import GateSession, SessionCodec, cookie_name
from waiting_room.store.embedded import free_port

SECRET = "bench secret, not a real one"


def serve(app: str, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent), f"gate_app:{app}"]
    argv += ["--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def drive(url: str, n: int, concurrency: int, cookies: dict[str, str]) -> float:
    """Requests per second for `n` GETs of `url`; raises on any non-200."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, limits=limits, cookies=cookies) as client:
        remaining = n

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                r = await client.get(url)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {r.status_code} {r.text[:200]}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


async def asgi_cpu_us(app: Any, path: str, headers: list[tuple[bytes, bytes]], calls: int) -> float:
    """CPU microseconds per request of calling the ASGI app itself."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"accept", b"*/*"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.process_time()
    for _ in range(calls):
        await app(dict(scope), receive, send)
    spent = time.process_time() - start
    if set(statuses) != {200}:
        raise RuntimeError(f"{path}: statuses {sorted(set(statuses))}")
    return spent / calls * 1e6


async def in_process(args: argparse.Namespace) -> None:
    from bench.gate_app import bare, gated

    session = SessionCodec(SECRET).encode(GateSession("bench", time.time() + 3600, "spent.token.value"))
    cookie = [(b"cookie", f"theme=dark; {cookie_name('bench')}={session}".encode())]
    cases = {
        "bare app": (bare, "/checkout", cookie),
        "gate, unguarded path": (gated, "/products", cookie),
        "gate, guarded path with a session": (gated, "/checkout", cookie),
    }
    for app, path, headers in cases.values():
        await asgi_cpu_us(app, path, headers, 500)  # warm up
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (app, path, headers) in cases.items():
            results[name].append(await asgi_cpu_us(app, path, headers, args.calls))
    base = statistics.median(results["bare app"])
    rows = [(name, statistics.median(us), statistics.median(us) / base) for name, us in results.items()]
    print(f"in process, {args.calls} calls x {args.rounds} rounds:")
    print(table(["case", "CPU us per request (median of rounds)", "ratio to bare"], rows), flush=True)


async def main(args: argparse.Namespace) -> None:
    print_machine()
    await in_process(args)
    bare_port, gated_port = free_port(), free_port()
    procs = [serve("bare", bare_port), serve("gated", gated_port)]
    try:
        await wait_up(f"http://{HOST}:{bare_port}/")
        await wait_up(f"http://{HOST}:{gated_port}/")
        session = SessionCodec(SECRET).encode(GateSession("bench", time.time() + 3600, "spent.token.value"))
        cases = {
            "bare app": (f"http://{HOST}:{bare_port}/checkout", {}),
            "gate, unguarded path": (f"http://{HOST}:{gated_port}/products", {}),
            "gate, guarded path with a session": (
                f"http://{HOST}:{gated_port}/checkout",
                {cookie_name("bench"): session},
            ),
        }
        for url, cookies in cases.values():  # warm up both servers and connections
            await drive(url, 200, args.concurrency, cookies)
        results: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (url, cookies) in cases.items():
                results[name].append(await drive(url, args.requests, args.concurrency, cookies))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
    base = statistics.median(results["bare app"])
    rows = [(name, statistics.median(rps), statistics.median(rps) / base) for name, rps in results.items()]
    print(f"over HTTP (uvicorn, one process each), {args.requests} requests x {args.rounds} rounds:")
    print(table(["case", "requests/s (median of rounds)", "ratio to bare"], rows))
    print_machine()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20000, help="in-process calls per case and round")
    parser.add_argument("--requests", type=int, default=1000, help="HTTP requests per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=120)
    arguments = parser.parse_args()
    install_deadline(arguments.timeout)
    asyncio.run(main(arguments))
