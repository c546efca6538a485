"""The command line: bad settings are refused in words, and `demo` starts and stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.cluster import running
from support.waiting import poll

from waiting_room.store.embedded import free_port

CLI = str(Path(sys.executable).parent / "waiting-room")


def _env(**wr: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("WR_")}, **wr}


@pytest.mark.parametrize(
    ("role", "env", "says"),
    [
        ("web", {}, "WR_REDIS_URL is not set"),
        ("web", {"WR_REDIS_URL": "redis+cluster://127.0.0.1"}, "needs host:port"),
        ("promoter", {"WR_REDIS_MIN_REPLICAS": "two"}, "WR_REDIS_MIN_REPLICAS must be"),
        ("promoter", {"WR_REDIS_URL": "http://127.0.0.1:1"}, "WR_REDIS_URL must start with"),
        ("web", {"WR_REDIS_URL": "redis://127.0.0.1:1/0", "WR_SIGNING_KEY": "/nonexistent.pem"}, "cannot read"),
        ("promoter", {"WR_TICK_MS": "soon"}, "WR_TICK_MS must be an integer"),
        ("web", {"WR_PUBLIC_URL": "ftp://x"}, "WR_PUBLIC_URL"),
        ("web", {"WR_WEB_WORKERS": "many"}, "WR_WEB_WORKERS must be an integer"),
        ("web", {"WR_TRUSTED_PROXIES": "proxy.example"}, "is not an address or CIDR"),
    ],
)
def test_bad_settings_are_refused_in_words(role: str, env: dict[str, str], says: str, tmp_path: Path) -> None:
    argv = [CLI, role, "--port", str(free_port())] if role == "web" else [CLI, role]
    result = subprocess.run(argv, env=_env(**env), cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result
    assert says in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_bad_worker_count_is_refused_in_words(tmp_path: Path) -> None:
    argv = [CLI, "web", "--port", str(free_port()), "--workers", "0"]
    result = subprocess.run(argv, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result
    assert "--workers must be between 1 and 64" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_demo_starts_everything_and_stops_it_all(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [CLI, "demo", "--port", str(port), "--crowd", "3"],
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        joined = None
        while time.monotonic() < deadline and joined is None:
            try:
                response = httpx.post(f"{base}/api/events/demo/tickets", timeout=2)
                joined = response if response.status_code == 201 else None
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert joined is not None, "the demo never answered a join"
        assert joined.json()["position"] >= 1
        assert httpx.get(f"{base}/e/demo", timeout=5).status_code == 200
        data_dir = tmp_path / ".waiting-room"
        assert (data_dir / "signing-key.pem").exists()
        assert any((data_dir / "redis").rglob("*.aof")), "the embedded Redis keeps an append-only file"
    finally:
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert "/e/demo" in output and "admin token" in output
    assert "Traceback" not in output
    with pytest.raises(httpx.HTTPError):  # the web process is gone with it
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / ".waiting-room" / "redis")], capture_output=True)
    assert leftovers.returncode == 1, "the embedded redis-server is still running"


@pytest.mark.slow
def test_promoter_check_tells_whether_a_promoter_is_alive(tmp_path: Path) -> None:
    with running(tmp_path / "cluster", webs=1, promoters=1) as cluster:

        def check() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [CLI, "promoter", "--check"], env=cluster.env, capture_output=True, text=True, timeout=30
            )

        alive = poll(lambda: (r := check()).returncode == 0 and r, "a live promoter report", within=15)
        assert "alive" in alive.stdout
        for proc in cluster.promoters:
            proc.kill()
        dead = poll(lambda: (r := check()).returncode == 1 and r, "the report to age out", within=30)
        assert "no live promoter" in dead.stderr and "Traceback" not in dead.stderr
