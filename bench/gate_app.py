"""The apps `bench.gate` serves: one tiny Starlette app, bare and behind the gate.

The gate's waiting room is a closed port on purpose: a request that made a
network call would fail, so every 200 through the gate is one with none.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from waiting_room.gate import AdmissionGate


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


bare = Starlette(routes=[Route("/{rest:path}", ok)])
gated = AdmissionGate(
    bare,
    waiting_room_url=os.environ.get("BENCH_GATE_WR_URL", "http://127.0.0.1:9"),
    guard={"/checkout": "bench"},
    secret=os.environ.get("BENCH_GATE_SECRET", "bench secret, not a real one"),
)
