"""What every benchmark shares: a private stack, joins, the bus, Redis command counts, small stats.

A `Stack` is one redis-server (EmbeddedRedis, free port, temp dir), one
`waiting-room web` and one `waiting-room promoter` as real subprocesses with
the contract's environment. Everything binds to 127.0.0.1 and everything is
stopped when the `with` block ends, also on a timeout or Ctrl-C.

The WebSocket client pool is in `bench.clients`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from waiting_room.core.tokens import ensure_private_key
from waiting_room.store import keys
from waiting_room.store.embedded import EmbeddedRedis, free_port
from waiting_room.store.queue import Queue
from waiting_room.store.scripts import Scripts

EVENT = "bench"
HOST = "127.0.0.1"


# --- time limits and process hygiene ------------------------------------------


class BenchTimeout(Exception):
    """The hard overall timeout of a benchmark run."""


def install_deadline(seconds: float) -> None:
    """Abort the whole run after `seconds` (SIGALRM); SIGTERM exits too, so `finally` blocks clean up."""

    def on_alarm(*_: object) -> None:
        raise BenchTimeout(f"hard timeout of {seconds:.0f} s reached")

    def on_term(*_: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(max(1, math.ceil(seconds)))


def raise_nofile() -> int:
    """Every socket is a file: lift the soft limit to the hard one (20,000 on these machines)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far: its threads' run time in nanoseconds (schedstat), else user +
    system time in clock ticks (10 ms: a push window of 0.3 CPU-s read in ticks is ±3 %)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
    except OSError:
        total = 0
    if total:
        return total / 1e9
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        total_kib = int(f.readline().split()[1])
    try:
        redis_version = (
            subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=5)
            .stdout.split()[2]
            .removeprefix("v=")
        )
    except (OSError, IndexError, subprocess.SubprocessError):
        redis_version = "?"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "ram": f"{total_kib / 1024 / 1024:.1f} GiB",
        "python": sys.version.split()[0],
        "redis": redis_version,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def print_machine() -> None:
    m = machine()
    print(
        f"machine: nproc={m['nproc']} cpu={m['cpu']!r} ram={m['ram']} python={m['python']} "
        f"redis={m['redis']} loadavg={m['loadavg']}",
        flush=True,
    )


# --- the stack under test ---------------------------------------------------------


@dataclass
class Stack:
    """redis-server + `waiting-room web` + `waiting-room promoter`, private to one run."""

    tick_ms: int = 500
    with_promoter: bool = True
    web_profile: Path | None = None  # run the web process under cProfile, writing here on exit
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wr-bench-")))
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redis: EmbeddedRedis | None = None
    web: subprocess.Popen[bytes] | None = None
    promoter: subprocess.Popen[bytes] | None = None

    @property
    def public_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.url

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "WR_REDIS_URL": self.redis_url,
            "WR_ADMIN_TOKEN": self.admin_token,
            "WR_SIGNING_KEY": str(self.root / "signing-key.pem"),
            "WR_TICK_MS": str(self.tick_ms),
            "WR_PUBLIC_URL": self.public_url,
            "WR_ALLOWED_ORIGINS": self.public_url,
            "WR_DATA_DIR": str(self.root / "data"),
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{role}.log", "wb")  # noqa: SIM115 - the child owns it; closed with the dir
        argv = [sys.executable, "-m", "waiting_room", role, *args]
        if role == "web" and self.web_profile is not None:
            argv = [sys.executable, "-m", "bench.profile_web", str(self.web_profile), role, *args]
        return subprocess.Popen(
            argv, env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> Stack:
        self.redis = EmbeddedRedis(self.root / "redis")
        self.redis.start()
        ensure_private_key(self.root / "signing-key.pem")
        self.web = self._spawn("web", "--host", HOST, "--port", str(self.port))
        if self.with_promoter:
            self.start_promoter()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f"web exited early:\n{self.log_tail('web')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.public_url}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"web did not become ready:\n{self.log_tail('web')}")

    def start_promoter(self) -> None:
        self.promoter = self._spawn("promoter")

    def log_tail(self, role: str, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.root / f"{role}.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        for proc in (self.promoter, self.web):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in (self.promoter, self.web):
            if proc is None:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.redis is not None:
            self.redis.stop()
        for role in ("web", "promoter"):
            tail = self.log_tail(role)
            if "Traceback" in tail or "ERROR" in tail:
                print(f"--- {role}.log (tail) ---\n{tail}", file=sys.stderr)
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- talking to it -----------------------------------------------------------

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def put_event(self, http: httpx.AsyncClient, **settings: Any) -> dict[str, Any]:
        r = await http.put(f"{self.public_url}/api/admin/events/{EVENT}", json=settings, headers=self.admin_headers())
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    async def set_status(self, http: httpx.AsyncClient, status: str) -> None:
        r = await http.post(
            f"{self.public_url}/api/admin/events/{EVENT}/status", json={"status": status}, headers=self.admin_headers()
        )
        r.raise_for_status()

    async def stats(self, http: httpx.AsyncClient) -> dict[str, Any]:
        r = await http.get(f"{self.public_url}/api/admin/events/{EVENT}/stats", headers=self.admin_headers())
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body


async def join_http(stack: Stack, n: int, concurrency: int = 8) -> list[tuple[str, int]]:
    """n new tickets through the public API, in join order: (ticket, position at join).

    Concurrency 8: httpx's pool gets slower, not faster, with more requests in flight (~230/s at 32).

    Each request carries a fresh `wr_uid`, exactly as n different browsers without a
    cookie would get one each; the client's cookie jar is never used.
    """
    out: list[tuple[str, int]] = []
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def one() -> None:
            async with sem:
                uid = secrets.token_urlsafe(18)
                for _ in range(100):
                    r = await http.post(
                        f"{stack.public_url}/api/events/{EVENT}/tickets", headers={"Cookie": f"wr_uid={uid}"}
                    )
                    if r.status_code != 429:  # the per-address join limit: every bench join comes from one
                        break
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                if r.status_code != 201:
                    raise RuntimeError(f"join answered {r.status_code}: {r.text[:200]}")
                body = r.json()
                out.append((body["ticket"], int(body["position"])))

        await asyncio.gather(*(one() for _ in range(n)))
    out.sort(key=lambda t: t[1])
    return out


async def join_lua(stack: Stack, n: int, concurrency: int = 16) -> list[tuple[str, int]]:
    """n new tickets by running join.lua directly (Queue.join), skipping HTTP: for big lines."""
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        queue = Queue(redis, Scripts.register(redis), stack.public_url)
        out: list[tuple[str, int]] = []
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with sem:
                view, _ = await queue.join(EVENT, secrets.token_urlsafe(18))
                assert view.position is not None
                out.append((view.ticket, view.position))

        await asyncio.gather(*(one() for _ in range(n)))
    finally:
        await redis.aclose()
    out.sort(key=lambda t: t[1])
    return out


HTTP_JOIN_MAX = 1000  # "auto" joins by HTTP up to this many: the web process's per-address burst


async def join(stack: Stack, n: int, via: str) -> tuple[list[tuple[str, int]], float, str]:
    """Tickets, the join rate (per second) and the way used: "http", "lua", or "auto" (http up to 1000).

    The web process lets one address join 200/s after a burst of 1000, and every bench join comes
    from 127.0.0.1: past the burst, HTTP joins would measure that limit, not the product.
    """
    if via == "auto":
        via = "http" if n <= HTTP_JOIN_MAX else "lua"
    started = time.monotonic()
    tickets = await (join_http(stack, n) if via == "http" else join_lua(stack, n))
    return tickets, n / max(1e-9, time.monotonic() - started), via


# --- the bus, seen from the bench ----------------------------------------------------


@dataclass
class Advance:
    received: float  # time.time() when the bench got it
    at: float  # the promoter script's Redis TIME, seconds
    served: int
    waiting: int
    admitted: int
    observed_rate: float


class BusTap:
    """Subscribes to `wr:bus` and keeps every `advance` of the bench event."""

    def __init__(self, redis_url: str) -> None:
        self.redis = Redis.from_url(redis_url, decode_responses=True)
        self.advances: list[Advance] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)

    async def _run(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.DEFAULT.bus)
        self._ready.set()
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                now = time.time()
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    body = json.loads(message["data"])
                    if body.get("type") == "advance" and body.get("event") == EVENT:
                        admitted = body.get("admitted")
                        self.advances.append(
                            Advance(
                                now,
                                body["at"] / 1000,
                                int(body["served"]),
                                int(body["waiting"]),
                                len(admitted) if isinstance(admitted, list) else 0,
                                float(body.get("observed_rate") or 0),
                            )
                        )
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.redis.aclose()


async def commandstats(redis: Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (the bench's own INFO/RESETSTAT left out)."""
    raw: dict[str, Any] = await redis.info("commandstats")
    calls = {}
    for name, value in raw.items():
        command = name.removeprefix("cmdstat_")
        if command in ("info", "config|resetstat"):
            continue
        calls[command] = int(value["calls"])
    return calls


async def measure_commands(redis: Redis, ticks: int, tick_s: float) -> tuple[dict[str, float], float]:
    """Redis commands per tick over a window of `ticks` ticks: {command: calls/tick}, total/tick."""
    await redis.config_resetstat()
    started = time.monotonic()
    await asyncio.sleep(ticks * tick_s)
    calls = await commandstats(redis)
    elapsed_ticks = (time.monotonic() - started) / tick_s
    per_tick = {c: n / elapsed_ticks for c, n in sorted(calls.items(), key=lambda kv: -kv[1])}
    return per_tick, sum(per_tick.values())


# --- numbers -----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], fmt: Callable[[object], str] | None = None) -> str:
    """A Markdown table (it reads fine in a terminal too)."""

    def cell(v: object) -> str:
        if fmt is not None:
            return fmt(v)
        if isinstance(v, float):
            return "-" if math.isnan(v) else f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join(lines)
