"""A stand-in for someone else's app, protected by the gate, run by uvicorn in its own process.

It guards `/guarded/{event}/...` by a function over the scope (one event per
test) and answers every request with what it received, so a test sees
exactly what the gate let through.
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from waiting_room.gate import AdmissionGate


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "app": "protected",
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "body": body.decode(errors="replace"),
            "content_type": request.headers.get("content-type"),
        }
    )


def event_of(scope: dict[str, Any]) -> str | None:
    parts = str(scope["path"]).split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "guarded" and parts[2] else None


inner = Starlette(routes=[Route("/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE"])])
app = AdmissionGate(
    inner,
    waiting_room_url=os.environ["GATE_WAITING_ROOM_URL"],
    guard=json.loads(os.environ["GATE_GUARD"]) if os.environ.get("GATE_GUARD") else event_of,
    secret=os.environ["GATE_SECRET"],
    jwks_refetch_interval=float(os.environ.get("GATE_JWKS_REFETCH", "1")),
)
