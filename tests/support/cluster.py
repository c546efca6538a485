"""The product as separate processes: `waiting-room web` (one or more) and promoters on a private Redis.

Each cluster has its own redis-server, a fresh Ed25519 signing key and admin
token, and ports on 127.0.0.1; `close()` stops every process it started.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.cluster import ClusterNode
from redis.sentinel import Sentinel

from waiting_room.store.embedded import EmbeddedRedis, free_port
from waiting_room.store.keys import EventKeys

from .redis_server import start_redis
from .waiting import poll
from .ws import WsClient

TICK_MS = 100
CLI = str(Path(sys.executable).parent / "waiting-room")
OWNER_LINE = re.compile(r"promoter (promoter-[0-9a-f]+) ticking")


def write_ed25519_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return key


class Proc:
    """A child in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def describe(self) -> str:
        state = "running" if self.running else f"exited {self.popen.returncode}"
        tail = "\n".join(self.log().splitlines()[-30:])
        return f"--- {self.name} ({state}) {self.log_path}:\n{tail}"


def sync_client(url: str) -> redis_sync.Redis:
    """A plain client for the tests' own reads, on a single node or a cluster."""
    scheme, _, rest = url.partition("://")
    hosts = [(h, int(p)) for h, _, p in (n.rpartition(":") for n in rest.partition("/")[0].split(","))]
    if scheme == "redis+cluster":
        nodes = [ClusterNode(h, p) for h, p in hosts]
        return redis_sync.RedisCluster(startup_nodes=nodes, decode_responses=True)  # type: ignore[return-value]
    if scheme == "redis+sentinel":
        return Sentinel(hosts).master_for(rest.partition("/")[2] or "mymaster", decode_responses=True)
    return redis_sync.Redis.from_url(url, decode_responses=True)


@contextlib.contextmanager
def running(root: Path, webs: int = 1, promoters: int = 1, workers: int = 1, **options: Any) -> Iterator[Cluster]:
    """A started cluster, closed (every process stopped) on the way out."""
    cluster = Cluster(root, webs, promoters, workers, **options)
    try:
        yield cluster.start()
    finally:
        cluster.close()


class Cluster:
    """`redis_url`: use that Redis (a Redis Cluster, say) instead of starting a private one;
    `env`: more WR_* settings for every process."""

    def __init__(
        self,
        root: Path,
        webs: int = 1,
        promoters: int = 1,
        workers: int = 1,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.want = (webs, promoters)
        self.workers = workers  # processes behind each web's port (`web --workers N`)
        self.redis_server: EmbeddedRedis | None = None if redis_url else start_redis(root / "redis")
        redis_url = redis_url or self.redis_server.url  # type: ignore[union-attr]
        self.key_path = root / "signing-key.pem"
        self.key = write_ed25519_key(self.key_path)
        self.admin_token = secrets.token_urlsafe(24)
        self.ports = [free_port() for _ in range(webs)]
        self.public_url = f"http://127.0.0.1:{self.ports[0]}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WR_")},
            "WR_REDIS_URL": redis_url,
            "WR_SIGNING_KEY": str(self.key_path),
            "WR_ADMIN_TOKEN": self.admin_token,
            "WR_TICK_MS": str(TICK_MS),
            "WR_PUBLIC_URL": self.public_url,
            "WR_ALLOWED_ORIGINS": self.public_url,
            "WR_DATA_DIR": str(root / "data"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.webs: list[Proc | None] = [None] * webs
        self.promoters: list[Proc] = []
        # keeps no cookies, so each join through it is a new visitor (see `visitor` for one browser)
        self.http = httpx.Client(
            trust_env=False, timeout=10, cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        )
        self.admin = httpx.Client(trust_env=False, timeout=10, headers={"Authorization": f"Bearer {self.admin_token}"})
        self._clients = [self.http, self.admin]
        self.redis: redis_sync.Redis = sync_client(redis_url)

    # --- processes ---------------------------------------------------------

    def start(self) -> Cluster:
        webs, promoters = self.want
        for i in range(webs):
            self.start_web(i, wait=False)
        for i in range(webs):
            self.wait_healthy(i)
        for _ in range(promoters):
            self.start_promoter()
        return self

    def start_web(self, i: int, wait: bool = True) -> None:
        argv = [CLI, "web", "--host", "127.0.0.1", "--port", str(self.ports[i]), "--workers", str(self.workers)]
        self.webs[i] = Proc(f"web{i}", argv, self.env, self.root / f"web{i}.log")
        if wait:
            self.wait_healthy(i)

    def wait_healthy(self, i: int) -> None:
        proc = self.webs[i]
        assert proc is not None

        def healthy() -> bool:
            assert proc.running, proc.describe()
            with contextlib.suppress(httpx.HTTPError):
                return self.http.get(self.url("/readyz", i), timeout=1).status_code == 200
            return False

        poll(healthy, lambda: f"web {i} to answer /readyz\n{proc.describe()}", within=30, interval=0.1)

    def kill_web(self, i: int) -> None:
        proc = self.webs[i]
        assert proc is not None
        proc.kill()

    def start_promoter(self) -> Proc:
        proc = Proc(
            f"promoter{len(self.promoters)}",
            [CLI, "promoter"],
            self.env,
            self.root / f"promoter{len(self.promoters)}.log",
        )
        self.promoters.append(proc)
        poll(lambda: self.owner_of(proc), lambda: f"the promoter to start\n{proc.describe()}", within=30)
        return proc

    @staticmethod
    def owner_of(proc: Proc) -> str | None:
        """The lease owner id a promoter logs at start."""
        found = OWNER_LINE.search(proc.log())
        return found.group(1) if found else None

    def leader(self, event: str) -> Proc | None:
        owner = self.redis.get(EventKeys(event).lease)
        return next((p for p in self.promoters if p.running and self.owner_of(p) == owner), None)

    def describe(self) -> str:
        return "\n".join(p.describe() for p in [*self.webs, *self.promoters] if p is not None)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for proc in [*self.webs, *self.promoters]:
            if proc is not None:
                proc.stop()
        self.redis.close()
        if self.redis_server is not None:
            self.redis_server.stop()

    # --- HTTP --------------------------------------------------------------

    def url(self, path: str, web: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[web]}{path}"

    def visitor(self) -> httpx.Client:
        """A client with its own cookie jar: one browser."""
        client = httpx.Client(trust_env=False, timeout=10)
        self._clients.append(client)
        return client

    def put_event(self, event: str, **settings: Any) -> dict[str, Any]:
        r = self.admin.put(self.url(f"/api/admin/events/{event}"), json=settings)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def set_status(self, event: str, status: str) -> None:
        r = self.admin.post(self.url(f"/api/admin/events/{event}/status"), json={"status": status})
        assert r.status_code == 200, r.text

    def stats(self, event: str) -> dict[str, Any]:
        r = self.admin.get(self.url(f"/api/admin/events/{event}/stats"))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def join(
        self, event: str, web: int = 0, client: httpx.Client | None = None, forwarded_for: str | None = None
    ) -> dict[str, Any]:
        """A join; `forwarded_for` names the visitor's own address (127.0.0.1 is a trusted proxy)."""
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        r = (client or self.http).post(self.url(f"/api/events/{event}/tickets", web), json={}, headers=headers)
        assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def ticket(self, ticket: str, web: int = 0) -> dict[str, Any]:
        r = self.http.get(self.url(f"/api/tickets/{ticket}", web))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_state(self, ticket: str, state: str, within: float = 15.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.ticket(ticket)
            return body if body["state"] == state else None

        return poll(reached, f"{ticket} to be {state}", within)

    def redeem(self, token: Any, client: httpx.Client | None = None) -> httpx.Response:
        return (client or self.http).post(self.url("/api/redeem"), json={"token": token})

    # --- sockets -----------------------------------------------------------

    def ws(self, ticket: str, web: int = 0, origin: str | None = "") -> WsClient:
        """A socket client; origin "" means the public URL's (allowed), None sends none."""
        url = f"ws://127.0.0.1:{self.ports[web]}/ws/tickets/{ticket}"
        return WsClient(url, ticket, self.public_url if origin == "" else origin)
