"""A real Sentinel setup for the suite: a primary, its replicas, and one redis-sentinel watching them.

Short timeouts (down after 1 s) so a SIGKILLed primary is failed over in a
few seconds; `close()` stops everything it started.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import redis as redis_sync

from waiting_room.store.embedded import EmbeddedRedis, free_port, redis_server_binary

from .waiting import poll

SERVICE = "mymaster"


class SentinelGroup:
    def __init__(self, root: Path, replicas: int = 0) -> None:
        self.root = root
        self.nodes = [EmbeddedRedis(root / f"node{i}") for i in range(1 + replicas)]
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{SERVICE}"

    def start(self) -> SentinelGroup:
        primary, *replicas = self.nodes
        for node in self.nodes:
            node.start()
            with redis_sync.Redis(port=node.port) as r:  # sync a replica at once; stop without waiting for one
                r.config_set("repl-diskless-sync-delay", 0)
                r.config_set("shutdown-timeout", 0)
        for replica in replicas:
            with redis_sync.Redis(port=replica.port) as r:
                r.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        poll(lambda: self.replicas_online(primary) == len(replicas), "the replicas to sync", within=30)
        config = self.root / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.root}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        self.proc = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        poll(lambda: self.primary_port() == primary.port, "redis-sentinel to come up")
        return self

    def primary_port(self) -> int | None:
        """The primary's port as the sentinel names it now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(f"SENTINEL get-master-addr-by-name {SERVICE}\r\n".encode())
                reply = s.recv(256).split(b"\r\n")
                return int(reply[4]) if len(reply) > 4 and reply[4].isdigit() else None
        except OSError:
            return None

    def node(self, port: int) -> EmbeddedRedis:
        return next(n for n in self.nodes if n.port == port)

    @staticmethod
    def replicas_online(node: EmbeddedRedis) -> int:
        with redis_sync.Redis(port=node.port, decode_responses=True) as r:
            info = r.info("replication")
            return sum(
                1
                for k, v in info.items()
                if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
            )

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        for node in self.nodes:
            node.kill()  # throwaway data: no graceful shutdown (which may wait on a replica's sync)
