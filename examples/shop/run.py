"""One command: the waiting room demo and the shop behind it, both stopped by Ctrl-C.

    python examples/shop/run.py [--port 8001] [--waiting-room-port 8000]

It runs `waiting-room demo`, points its `demo` event's target at the shop's
checkout, and serves the shop with uvicorn.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def wait_ready(url: str, proc: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the waiting room did not start")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"no answer from {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description="the waiting room demo and the example shop behind it")
    parser.add_argument("--port", type=int, default=8001, help="the shop's port")
    parser.add_argument("--waiting-room-port", type=int, default=8000)
    args = parser.parse_args()
    waiting_room = f"http://127.0.0.1:{args.waiting_room_port}"
    shop = f"http://127.0.0.1:{args.port}"
    admin_token = os.environ.get("WR_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    cli = shutil.which("waiting-room", path=str(Path(sys.executable).parent)) or "waiting-room"
    env = {**os.environ, "WR_ADMIN_TOKEN": admin_token, "WR_PUBLIC_URL": waiting_room}
    # a clean exit on Ctrl-C or SIGTERM, so the `finally` below stops the waiting room too (uvicorn
    # re-raises the signal that stopped it once it has shut down, which lands here as well)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))
    demo = subprocess.Popen(
        [cli, "demo", "--port", str(args.waiting_room_port), "--crowd", "5"], env=env, start_new_session=True
    )
    try:
        wait_ready(f"{waiting_room}/readyz", demo)
        settings = {"target_url": f"{shop}/checkout", "title": "Spring sale"}
        request = urllib.request.Request(
            f"{waiting_room}/api/admin/events/demo",
            data=json.dumps(settings).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()
        os.environ.setdefault("SHOP_GATE_SECRET", secrets.token_urlsafe(32))
        os.environ["SHOP_WAITING_ROOM_URL"] = waiting_room
        os.environ["SHOP_EVENT"] = "demo"
        print(f"\n  shop:          {shop}/\n  its checkout:  {shop}/checkout (behind the line)\n", flush=True)
        import uvicorn

        sys.path.insert(0, str(Path(__file__).parent))
        uvicorn.run("app:app", host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(15)
        except subprocess.TimeoutExpired:
            demo.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
