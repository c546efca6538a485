"""Tickets issued per second over HTTP, against the floors, in one run.

For each server (ours: `waiting-room web`; `minimal`: one EVALSHA of join.lua and a cookie; `bare`:
"hello"; the last two from bench/baselines.py, all on the same uvicorn options), each worker count and
each number of connections: wrk posts joins for a few seconds, every request a new visitor with its own
X-Forwarded-For (127.0.0.1 is a trusted proxy). Measured: answers per second by status, p50/p99
latency, and the web processes' CPU, so joins per web CPU-second compare ours with the minimal
endpoint. Redis is one private redis-server (AOF everysec, as the product runs), flushed before
each measurement; the load generator and Redis share the machine with the servers.

Needs wrk (`apt-get install wrk`).

    python -m bench.joins                                   # 16/64/256 connections, 1 and 2 workers
    python -m bench.joins --conns 64 --workers 2 --apps ours,minimal --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.common import EVENT, HOST, cpu_seconds, install_deadline, machine, print_machine, table
from waiting_room.core.tokens import ensure_private_key
from waiting_room.store.embedded import EmbeddedRedis, free_port
from waiting_room.store.events import Events

WRK_SCRIPT = Path(__file__).with_name("wrk_join.lua")
JOIN_PATH = f"/api/events/{EVENT}/tickets"


@dataclass
class Row:
    app: str
    workers: int
    conns: int
    offered: str  # "closed" (each connection sends as soon as it has its answer) or a paced rate per second
    answers_s: float
    ok_s: float
    shed: int  # 429 answers
    other: int  # anything else, socket errors included
    p50_ms: float
    p99_ms: float
    web_cpu_s: float
    ok_per_cpu_s: float
    loadavg: float


class Server:
    """One server under test: a supervisor and its workers (or one process), on a free port."""

    def __init__(self, app: str, workers: int, env: dict[str, str], root: Path) -> None:
        self.app = app
        self.port = free_port()
        if app == "ours":
            argv = [sys.executable, "-m", "waiting_room", "web", "--host", HOST, "--port", str(self.port)]
        else:
            argv = [sys.executable, "-m", "bench.baselines", app, "--host", HOST, "--port", str(self.port)]
        self.log = root / f"{app}-{workers}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*argv, "--workers", str(workers)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{app} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/healthz", timeout=1)
                if workers == 1 or len(self.pids()) > workers:
                    time.sleep(0.5)  # every worker past its startup
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{app} did not start")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        pid = self.proc.pid
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid, *(int(p) for p in f.read().split())]
        return [pid]

    def cpu(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        tail = self.log.read_text(errors="replace")[-3000:]
        if "Traceback" in tail:
            print(f"--- {self.app} log ---\n{tail}", file=sys.stderr)


def wrk(
    url: str, conns: int, seconds: float, path: str = JOIN_PATH, method: str = "POST", interval_ms: int = 0
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(WRK_SCRIPT), url]
    out = subprocess.run(
        [*argv, "--", path, method, str(interval_ms)], capture_output=True, text=True, timeout=seconds + 60
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk said: {out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(line)
    return result


async def reset(redis_url: str) -> None:
    """An empty Redis and the bench event, open, nobody admitted (no promoter runs)."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await redis.flushall()
        await Events(redis).put(EVENT, {"title": "bench", "rate_per_minute": 60})
    finally:
        await redis.aclose()


def measure(server: Server, redis_url: str, workers: int, conns: int, seconds: float, rate: float = 0) -> Row:
    """One measurement; `rate` > 0 paces the connections to offer that many joins a second in all."""
    interval_ms = round(conns * 1000 / rate) if rate else 0
    asyncio.run(reset(redis_url))
    wrk(server.url, conns, 1, interval_ms=interval_ms)  # warm up: connections, pools, caches
    asyncio.run(reset(redis_url))
    cpu0 = server.cpu()
    result = wrk(server.url, conns, seconds, interval_ms=interval_ms)
    cpu = server.cpu() - cpu0
    duration = result["duration_us"] / 1e6
    statuses = {int(k): v for k, v in result["statuses"].items()}
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    shed = statuses.get(429, 0)
    errors = result["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    other = sum(statuses.values()) - ok - shed + socket_errors
    return Row(
        app=server.app,
        workers=workers,
        conns=conns,
        offered=f"{conns * 1000 / interval_ms:,.0f}/s" if interval_ms else "closed",
        answers_s=sum(statuses.values()) / duration,
        ok_s=ok / duration,
        shed=shed,
        other=other,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        web_cpu_s=cpu,
        ok_per_cpu_s=ok / cpu if cpu else 0.0,
        loadavg=os.getloadavg()[0],
    )


def report(row: Row) -> None:
    print(
        f"{row.app} workers={row.workers} conns={row.conns} offered={row.offered}: {row.ok_s:,.0f} 2xx/s, "
        f"p99 {row.p99_ms:.1f} ms, 429 {row.shed}, other {row.other}, {row.ok_per_cpu_s:,.0f} 2xx per web CPU-s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", default="ours,minimal,bare")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--conns", default="16,32,64,256")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument(
        "--overload",
        type=float,
        default=4,
        help="then offer this many times the rate sustained at 64 connections, paced over 256 (0: skip)",
    )
    args = parser.parse_args()
    apps = args.apps.split(",")
    workers_list = [int(w) for w in args.workers.split(",")]
    conns_list = [int(c) for c in args.conns.split(",")]
    install_deadline(len(apps) * len(workers_list) * ((len(conns_list) + 1) * (args.seconds + 8) + 40) + 60)
    print_machine()
    root = Path(tempfile.mkdtemp(prefix="wr-bench-joins-"))
    redis = EmbeddedRedis(root / "redis")
    redis.start()
    rows: list[Row] = []
    try:
        ensure_private_key(root / "key.pem")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WR_")},
            "WR_REDIS_URL": redis.url,
            "WR_SIGNING_KEY": str(root / "key.pem"),
            "WR_ADMIN_TOKEN": secrets.token_urlsafe(24),
            "WR_DATA_DIR": str(root / "data"),
            "WR_TRUSTED_PROXIES": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        for workers in workers_list:
            for app in apps:
                server = Server(app, workers, env, root)
                try:
                    sustained = 0.0
                    for conns in conns_list:
                        row = measure(server, redis.url, workers, conns, args.seconds)
                        rows.append(row)
                        report(row)
                        if conns <= 64:
                            sustained = max(sustained, row.ok_s)
                    if args.overload and sustained and app != "bare":
                        row = measure(server, redis.url, workers, 256, args.seconds, rate=args.overload * sustained)
                        rows.append(row)
                        report(row)
                finally:
                    server.stop()
    finally:
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(
        table(
            [
                "app",
                "workers",
                "conns",
                "offered",
                "2xx/s",
                "429",
                "other",
                "p50 ms",
                "p99 ms",
                "web CPU s",
                "2xx/CPU-s",
                "load",
            ],
            [
                (
                    r.app,
                    r.workers,
                    r.conns,
                    r.offered,
                    r.ok_s,
                    r.shed,
                    r.other,
                    r.p50_ms,
                    r.p99_ms,
                    r.web_cpu_s,
                    r.ok_per_cpu_s,
                    r.loadavg,
                )
                for r in rows
            ],
        )
    )
    minimal = {(r.workers, r.conns): r for r in rows if r.app == "minimal" and r.offered == "closed"}
    bare = {(r.workers, r.conns): r for r in rows if r.app == "bare"}
    ratios = []
    for r in rows:
        if r.app != "ours" or r.offered != "closed":
            continue
        m, b = minimal.get((r.workers, r.conns)), bare.get((r.workers, r.conns))
        ratios.append(
            (
                r.workers,
                r.conns,
                r.ok_s / m.ok_s if m and m.ok_s else float("nan"),
                r.ok_per_cpu_s / m.ok_per_cpu_s if m and m.ok_per_cpu_s else float("nan"),
                r.ok_s / b.ok_s if b and b.ok_s else float("nan"),
            )
        )
    if ratios:
        print()
        print(
            table(["workers", "conns", "joins/s ÷ minimal", "joins/CPU-s ÷ minimal", "joins/s ÷ bare hello/s"], ratios)
        )
    print(f"\nloadavg at the end: {machine()['loadavg']}")


if __name__ == "__main__":
    main()
