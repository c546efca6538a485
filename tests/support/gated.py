"""A protected app in its own uvicorn process, in front of a cluster's waiting room."""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from waiting_room.store.embedded import free_port

from .cluster import Proc
from .waiting import poll

SUPPORT = Path(__file__).parent
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class ProtectedApp:
    def __init__(self, root: Path, waiting_room_url: str, env: dict[str, str], **extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.secret = secrets.token_urlsafe(24)
        env = {
            **env,
            "GATE_WAITING_ROOM_URL": waiting_room_url,
            "GATE_SECRET": self.secret,
            "GATE_JWKS_REFETCH": "0.2",
            **extra,
        }
        argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(SUPPORT), "protected:app"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        self.proc = Proc("protected", argv, env, root / f"protected-{self.port}.log")
        self._clients: list[httpx.Client] = []
        probe = self.client()
        poll(lambda: self._up(probe), lambda: f"the protected app to answer\n{self.proc.describe()}", within=30)

    def _up(self, client: httpx.Client) -> bool:
        assert self.proc.running, self.proc.describe()
        with contextlib.suppress(httpx.HTTPError):
            return client.get("/healthz").status_code == 200
        return False

    def client(self, browser: bool = False) -> httpx.Client:
        """One visitor with its own cookie jar; a browser sends Accept: text/html."""
        client = httpx.Client(base_url=self.base, trust_env=False, timeout=10, headers=BROWSER if browser else None)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.proc.stop()


@contextlib.contextmanager
def protected_app(root: Path, waiting_room_url: str, env: dict[str, str], **extra: str) -> Iterator[ProtectedApp]:
    app = ProtectedApp(root, waiting_room_url, env, **extra)
    try:
        yield app
    finally:
        app.close()
