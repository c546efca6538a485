"""Helpers for the failover tests (Redis Cluster, Sentinel): sockets spread over two web processes, and
joins that may be refused while Redis fails over, but only ever with a 503 and Retry-After."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .cluster import Cluster
from .waiting import until
from .ws import WsClient


async def open_sockets(c: Cluster, tickets: list[str]) -> list[WsClient]:
    clients = [c.ws(t, web=(i // 2) % 2) for i, t in enumerate(tickets)]
    await asyncio.gather(*(cl.connect() for cl in clients))
    await until(lambda: all(cl.of("position") for cl in clients), "a position on every socket")
    return clients


def try_join(c: Cluster, event: str, web: int) -> tuple[int, dict[str, Any]]:
    """A join that may be refused: (status, body); a refusal must be a 503 with Retry-After, nothing else."""
    try:
        r = c.http.post(c.url(f"/api/events/{event}/tickets", web), json={})
    except httpx.HTTPError:
        return 0, {}
    assert r.status_code in (201, 503), r.text
    if r.status_code == 503:
        assert r.headers.get("Retry-After") and r.json()["error"]["code"] == "unavailable"
    return r.status_code, r.json()
