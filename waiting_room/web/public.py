"""The public API: join, ticket status, redeem, release, JWKS, health, metrics."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from waiting_room.core.tickets import is_event_id
from waiting_room.core.tokens import TokenError
from waiting_room.store.queue import TicketView
from waiting_room.web.errors import ApiError, json_body
from waiting_room.web.ratelimit import retry_after_header
from waiting_room.web.state import UnknownEvent, app_state

UID_COOKIE = "wr_uid"
SESSION_COOKIE = "wr_session"
UID_MAX_AGE = 7 * 86400
JOINS_PER_SECOND = 200.0  # per client address and process
JOIN_BURST = 1000.0


def ticket_json(request: Request, view: TicketView, *, with_ws: bool = False) -> dict[str, Any]:
    body = view.to_json()
    if view.claims is not None:
        body.update(
            token=app_state(request).signer.mint(view.claims), expires_at=view.claims.expires_at, redirect=view.redirect
        )
    if with_ws:
        body.update(opens_at=view.opens_at, ws=f"/ws/tickets/{view.ticket}")
    return body


def _secure(request: Request) -> bool:
    return str(app_state(request).settings.public_url).startswith("https://")


async def join(request: Request) -> Response:
    event = request.path_params["event"]
    if not is_event_id(event):
        raise UnknownEvent(event)
    await json_body(request)  # optional, but if present it must be well-formed
    client = request.client.host if request.client else "?"
    wait = app_state(request).join_limiter.check(client, time.monotonic())
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            "too many joins from this address; try again shortly",
            {"Retry-After": retry_after_header(wait)},
        )
    uid = request.cookies.get(UID_COOKIE, "")
    fresh_uid = not (16 <= len(uid) <= 64 and uid.isascii() and uid.replace("-", "").replace("_", "").isalnum())
    if fresh_uid:
        uid = secrets.token_urlsafe(18)
    view, created = await app_state(request).queue.join(event, uid)
    app_state(request).metrics.joined(event, created)
    response = JSONResponse(ticket_json(request, view, with_ws=True), 201 if created else 200)
    if fresh_uid:
        response.set_cookie(
            UID_COOKIE, uid, max_age=UID_MAX_AGE, httponly=True, samesite="lax", secure=_secure(request)
        )
    return response


async def ticket_status(request: Request) -> Response:
    ticket = request.path_params["ticket"]
    view = await app_state(request).queue.status(ticket)
    if view is None:
        raise ApiError(404, "unknown_ticket", "there is no such ticket")
    return JSONResponse(ticket_json(request, view))


async def redeem(request: Request) -> Response:
    try:
        body = await json_body(request)
    except ApiError as exc:
        if exc.status != 400:
            raise
        body = {}
    wr = app_state(request)
    claims = wr.signer.verify(body.get("token"))  # refusals become the contract's errors (web.errors)
    session_expires_at = await wr.queue.redeem(claims)
    wr.metrics.redeemed(claims.event)
    response = JSONResponse({"event": claims.event, "ticket": claims.ticket, "session_expires_at": session_expires_at})
    set_session_cookie(request, response, claims.ticket, session_expires_at)
    return response


def set_session_cookie(request: Request, response: Response, ticket: str, expires_at: float) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        ticket,
        max_age=max(1, int(expires_at - time.time())),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


async def release(request: Request) -> Response:
    """By the session cookie, or by the redeemed token (a protected backend's gate holds no cookie of ours)."""
    try:
        body = await json_body(request)
    except ApiError as exc:
        if exc.status != 400:
            raise
        body = {}
    ticket = request.cookies.get(SESSION_COOKIE, "")
    if "token" in body:
        try:
            ticket = app_state(request).signer.verify(body["token"], allow_expired=True).ticket
        except TokenError:
            ticket = ""
    if not ticket or not await app_state(request).queue.release(ticket):
        raise ApiError(401, "no_session", "there is no live session to release")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def jwks(request: Request) -> Response:
    return JSONResponse(app_state(request).signer.jwks, headers={"Cache-Control": "public, max-age=300"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await app_state(request).redis.ping()
    except Exception:
        return JSONResponse({"error": {"code": "unavailable", "message": "Redis does not answer"}}, 503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    wr = app_state(request)
    page: Response = await wr.metrics.render(wr.events)
    return page


routes = [
    Route("/api/events/{event}/tickets", join, methods=["POST"]),
    Route("/api/tickets/{ticket}", ticket_status, methods=["GET"]),
    Route("/api/redeem", redeem, methods=["POST"]),
    Route("/api/sessions/release", release, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
