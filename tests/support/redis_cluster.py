"""A real Redis Cluster for the suite: six `redis-server --cluster-enabled yes` on loopback (3 primaries, 3 replicas).

Joined with `redis-cli --cluster create --cluster-replicas 1`; node timeouts are
short so a SIGKILLed primary is failed over in a couple of seconds. Needs
redis-server and redis-cli >= 7 (sharded pub/sub); `missing()` says why not.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_sync

from waiting_room.store.embedded import free_port

NODE_TIMEOUT_MS = 1000
NODES = 6


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for tool in ("redis-server", "redis-cli"):
        path = shutil.which(tool)
        if path is None:
            return f"{tool} is not on PATH"
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
        version = next((w.split("=")[-1] for w in out.split() if w[:1].isdigit() or w.startswith("v=")), "0")
        if int(version.split(".")[0]) < 7:
            return f"{tool} {version} is older than 7 (no sharded pub/sub)"
    return None


@dataclass
class Node:
    port: int
    data_dir: Path
    bus_port: int = field(default_factory=free_port)  # chosen, not port + 10000 (which may exceed 65535)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(shutil.which("redis-server")),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-port",
            str(self.bus_port),
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            "--cluster-replica-validity-factor",
            "0",  # a replica always stands for election, however long since it heard its primary
            "--repl-ping-replica-period",
            "1",
            "--repl-diskless-sync-delay",
            "0",
            "--shutdown-timeout",
            "0",
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )

    def client(self) -> redis_sync.Redis:
        return redis_sync.Redis(port=self.port, decode_responses=True, socket_timeout=2)

    def alive(self) -> bool:
        try:
            with self.client() as c:
                return bool(c.ping())
        except redis_sync.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@dataclass
class RedisCluster:
    root: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self, timeout: float = 30.0) -> RedisCluster:
        self.nodes = [Node(free_port(), self.root / f"node{i}") for i in range(NODES)]
        for node in self.nodes:
            node.start()
        _until(lambda: all(n.alive() for n in self.nodes), timeout, "cluster nodes did not start")
        subprocess.run(
            [
                str(shutil.which("redis-cli")),
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait_healthy(timeout)
        return self

    def close(self) -> None:
        for node in self.nodes:
            node.kill()  # throwaway data: no graceful shutdown (which may wait on a replica's sync)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every slot served, every live node agreeing, every primary with a connected replica."""
        _until(self.healthy, timeout, "the cluster did not become healthy")

    def healthy(self) -> bool:
        live = [n for n in self.nodes if n.proc is not None]
        try:
            for node in live:
                with node.client() as c:
                    info = c.execute_command("CLUSTER INFO")
                    if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                        return False
            primaries = self.primaries()
            return len(primaries) == 3 and all(self.connected_replicas(p) >= 1 for p in primaries)
        except (redis_sync.RedisError, KeyError):
            return False

    def by_port(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def primaries(self) -> list[Node]:
        """The live nodes that are primaries now (as each sees itself)."""
        found = []
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                with node.client() as c:
                    if c.execute_command("ROLE")[0] == "master":
                        found.append(node)
            except redis_sync.RedisError:
                continue
        return found

    def connected_replicas(self, node: Node) -> int:
        with node.client() as c:
            return int(c.info("replication")["connected_slaves"])

    def owner(self, key: str) -> Node:
        """The primary serving `key`'s slot now."""
        for node in self.primaries():
            with node.client() as c:
                slot = int(c.execute_command("CLUSTER KEYSLOT", key))
                for start, end, primary, *_ in c.execute_command("CLUSTER SLOTS"):
                    if start <= slot <= end:
                        return self.by_port(int(primary[1]))
        raise LookupError(key)

    def events_on_distinct_primaries(self, prefix: str, count: int = 3) -> list[str]:
        """Event ids whose `{event}` hash tags land on `count` different primaries."""
        with self.nodes[0].client() as c:
            slots = c.execute_command("CLUSTER SLOTS")
            chosen: dict[int, str] = {}
            for i in range(1000):
                event = f"{prefix}-{i}"
                slot = int(c.execute_command("CLUSTER KEYSLOT", event))
                port = next(int(p[1]) for s, e, p, *_ in slots if s <= slot <= e)
                chosen.setdefault(port, event)
                if len(chosen) == count:
                    return list(chosen.values())
        raise LookupError("no event ids on distinct primaries")


def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.1)
