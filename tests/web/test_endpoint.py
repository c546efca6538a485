"""A handler served as an Endpoint leaves its errors to the front's handlers: they answer them in the
contract's shape exactly as Starlette's own wrapper did."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router

from waiting_room.core.proxies import TrustedProxies
from waiting_room.web.endpoint import route
from waiting_room.web.errors import EXCEPTION_HANDLERS, ApiError, Json
from waiting_room.web.front import Front
from waiting_room.web.shed import Shed


async def answer(request: Request) -> Response:
    if request.path_params["what"] == "refuse":
        raise ApiError(409, "conflict", "no", {"Retry-After": "3"})
    return Json({"what": request.path_params["what"]}, 201)


async def test_answers_and_refusals_come_back_as_before() -> None:
    router = Router([route("/things/{what}", answer, methods=["POST"])])
    app = Front(router, TrustedProxies(()), Shed(), EXCEPTION_HANDLERS)  # the app's stack: web.app.App
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        ok, refused, wrong = (
            await http.post("/things/one"),
            await http.post("/things/refuse"),
            await http.get("/things/one"),
        )
    assert (ok.status_code, ok.json()) == (201, {"what": "one"})
    assert refused.status_code == 409 and refused.headers["retry-after"] == "3"
    assert refused.json() == {"error": {"code": "conflict", "message": "no"}}
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
