"""The server `waiting-room web` runs."""

from __future__ import annotations

import subprocess
import sys


def test_the_server_freezes_what_startup_built_before_it_serves() -> None:
    """A full garbage collection that walks the whole app stalls every request (joins' p99 went from ~50 ms
    to ~11 ms without it); serve_app freezes the startup objects out of the collector's way first."""
    probe = (
        "import gc, uvicorn\n"
        "from starlette.applications import Starlette\n"
        "from waiting_room.cli.web import serve_app\n"
        "uvicorn.Server.run = lambda self: print('frozen', gc.get_freeze_count())\n"  # report instead of serving
        "serve_app(Starlette(), '127.0.0.1', 0, 1)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout.split()[-1]) > 1000, out.stdout + out.stderr
