"""Clients that stop reading, against a real web process: what the server holds for each stays bounded
however much is pushed, and a client that reads is served meanwhile."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cluster import Cluster, running
from support.waiting import until
from support.ws import close_all

from waiting_room.core import messages
from waiting_room.store.keys import DEFAULT

pytestmark = pytest.mark.usefixtures("deadline")

STALLED = 20
# ~560 bytes each on the wire: 6.7 MB per socket, more than the kernel takes into a socket's send
# buffer (net.ipv4.tcp_wmem caps it at 4 MB), so what is left over is what the server would hold itself
NOTICES = 12_000
TEXT = "x" * 480
BATCH = 40  # fewer than a socket's queue of must-send messages: the reading client keeps up
BOUND_PER_SOCKET = 512 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("stalled"), webs=1, promoters=1) as made:
        yield made


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def stalled_socket(c: Cluster, ticket: str) -> socket.socket:
    """A WebSocket that completes its handshake and then never reads (a tiny receive buffer, so the
    server's writes back up at once)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", c.ports[0]))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws/tickets/{ticket} HTTP/1.1\r\nHost: 127.0.0.1:{c.ports[0]}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {c.public_url}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    return s


async def test_what_the_server_holds_for_a_client_that_stops_reading_is_bounded(cluster: Cluster) -> None:
    c = cluster
    c.put_event("stalled", status="paused")
    proc = c.webs[0]
    assert proc is not None
    stalled = [stalled_socket(c, c.join("stalled")["ticket"]) for _ in range(STALLED)]
    reader = await c.ws(c.join("stalled")["ticket"]).connect()
    try:
        await reader.wait_for("position")
        before = rss_bytes(proc.popen.pid)
        # as the admin API publishes them, a batch at a time, at the pace the reading client takes them
        for start in range(0, NOTICES, BATCH):
            with c.redis.pipeline(transaction=False) as pipe:
                for i in range(start, start + BATCH):
                    pipe.publish(DEFAULT.bus, messages.Notice("stalled", f"n{i}", "info", TEXT, 1.0).encode())
                pipe.execute()
            sent = start + BATCH
            await until(lambda: len(reader.of("notice")) == sent, "the batch on the socket that reads")  # noqa: B023
        assert c.http.get(c.url("/healthz")).status_code == 200
        grown = rss_bytes(proc.popen.pid) - before
        # per stalled socket: the transport's write buffer (64 KiB high-water mark) and the bounded
        # queue of must-send messages, not every notice pushed that the kernel did not take (~2.7 MB)
        assert grown / STALLED < BOUND_PER_SOCKET, f"{grown / STALLED / 1024:.0f} KiB per stalled socket"
    finally:
        for s in stalled:
            s.close()
        await close_all([reader])
