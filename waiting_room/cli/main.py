"""`waiting-room`: run a role (demo, web, promoter) or operate events from a terminal.

Each role imports what it runs inside its own function, so the operators' commands start
without loading the web stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence

from redis.exceptions import RedisError

from waiting_room.settings import Settings, SettingsError, parse_workers
from waiting_room.store.redis_client import check_url

log = logging.getLogger("waiting_room")

DEMO_EVENT = "demo"


def _raise_file_limit() -> None:
    """Each socket is a file: use the hard limit, not the (often 1024) soft one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_web(settings: Settings, host: str, port: int, workers: int | None = None) -> int:
    from waiting_room.cli.web import serve

    _raise_file_limit()
    return serve(settings, host, port, workers or settings.web_workers)


async def _promote(settings: Settings) -> None:
    from waiting_room.promoter import Promoter
    from waiting_room.store.redis_client import connect
    from waiting_room.store.scripts import Scripts

    assert settings.redis_url
    redis = connect(settings.redis_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Promoter(redis, Scripts.register(redis, settings.min_replicas), settings.tick_ms).run(stop)
    finally:
        await redis.aclose()


async def _check_promoters(settings: Settings) -> int:
    """Exit status for a health check: 0 if some promoter reported within the last seconds."""
    from waiting_room.store.events import Events
    from waiting_room.store.redis_client import connect

    assert settings.redis_url
    redis = connect(settings.redis_url)
    try:
        live = await Events(redis).live_promoters()
    finally:
        await redis.aclose()
    for owner, report in sorted(live.items()):
        leading = ", ".join(report.leading) or "no event"
        print(f"{owner}: alive, leading {leading}; slowest recent tick {report.tick_seconds:.3f} s")
    if not live:
        print("no live promoter: nobody is being admitted", file=sys.stderr)
    return 0 if live else 1


def run_promoter(settings: Settings, check: bool = False) -> int:
    if not settings.redis_url:
        print("error: WR_REDIS_URL is not set", file=sys.stderr)
        return 2
    try:
        check_url(settings.redis_url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if check:
        try:
            return asyncio.run(_check_promoters(settings))
        except (RedisError, OSError) as exc:
            print(f"error: Redis does not answer: {exc}", file=sys.stderr)
            return 1
    asyncio.run(_promote(settings))
    return 0


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return True
        time.sleep(0.1)
    return False


def run_demo(settings: Settings, host: str, port: int, crowd: int) -> int:
    """Embedded Redis (unless WR_REDIS_URL is set), one web process, the promoter and a `demo` event."""
    from waiting_room.core.tokens import ensure_private_key
    from waiting_room.store.embedded import EmbeddedRedis

    data_dir = settings.data_dir.resolve()
    redis = None
    redis_url = settings.redis_url
    if not redis_url:
        redis = EmbeddedRedis(data_dir / "redis")
        redis.start()
        redis_url = redis.url
    key_path = settings.signing_key_path or data_dir / "signing-key.pem"
    ensure_private_key(key_path)
    public_url = os.environ.get("WR_PUBLIC_URL") or f"http://{host}:{port}"
    env = {
        **os.environ,
        "WR_REDIS_URL": redis_url,
        "WR_SIGNING_KEY": str(key_path),
        "WR_ADMIN_TOKEN": settings.admin_token or secrets.token_urlsafe(24),
        "WR_PUBLIC_URL": public_url,
        "WR_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    me = [sys.executable, "-m", "waiting_room"]
    # own sessions: a terminal's Ctrl-C reaches only us, and we stop the children in order
    children = [
        subprocess.Popen([*me, "web", "--host", host, "--port", str(port)], env=env, start_new_session=True),
        subprocess.Popen([*me, "promoter"], env=env, start_new_session=True),
    ]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if not _wait_http(f"http://127.0.0.1:{port}/healthz", children[0]):
            print("error: the web process did not start", file=sys.stderr)
            return 1
        demo_settings = Settings.from_env(env)
        asyncio.run(_seed_demo(demo_settings, crowd))
        print(
            f"\n  waiting room:  {public_url}/e/{DEMO_EVENT}\n  dashboard:     {public_url}/admin"
            f"\n  admin token:   {env['WR_ADMIN_TOKEN']}\n  redis:         {redis_url}\n\n  Ctrl-C stops it all.",
            flush=True,
        )
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        if redis is not None:
            redis.stop()
    return 0


async def _seed_demo(settings: Settings, crowd: int) -> None:
    """The `demo` event, with a few simulated visitors ahead so the line visibly moves."""
    from waiting_room.store.events import Events
    from waiting_room.store.queue import Queue
    from waiting_room.store.redis_client import connect
    from waiting_room.store.scripts import Scripts

    assert settings.redis_url
    redis = connect(settings.redis_url)
    try:
        events = Events(redis)
        if await events.get(DEMO_EVENT) is None:
            await events.put(DEMO_EVENT, {"title": "Demo flash sale", "rate_per_minute": 60})
        queue = Queue(redis, Scripts.register(redis), settings.public_url)
        for _ in range(crowd):
            await queue.join(DEMO_EVENT, secrets.token_urlsafe(18))
    finally:
        await redis.aclose()


def _workers(value: str) -> int:
    try:
        return parse_workers(value, "--workers")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waiting-room", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="embedded Redis, one web process, the promoter and a demo event")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--crowd", type=int, default=30, help="simulated visitors queued ahead of you")
    web = sub.add_parser("web", help="one web process (HTTP + WebSockets)")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument(
        "--workers", type=_workers, default=None, help="processes serving the port (default: WR_WEB_WORKERS, else 1)"
    )
    promoter = sub.add_parser("promoter", help="the promoter (run one or more; one leads each event)")
    promoter.add_argument(
        "--check", action="store_true", help="exit 0 if a promoter is alive (for health checks), 1 if none is"
    )
    from waiting_room.cli import admin

    admin.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "demo":
        return run_demo(settings, args.host, args.port, args.crowd)
    if args.command == "web":
        try:
            return run_web(settings, args.host, args.port, args.workers)
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "promoter":
        return run_promoter(settings, args.check)
    from waiting_room.cli import admin

    return admin.run(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
