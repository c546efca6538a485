"""The public API: join, ticket status, redeem, release, JWKS, health, metrics."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from waiting_room.core import ids
from waiting_room.core.clients import client_key
from waiting_room.core.proof import Proof
from waiting_room.core.proof import issue as issue_challenge
from waiting_room.core.proof import verify as verify_proof
from waiting_room.core.tickets import is_event_id
from waiting_room.core.tokens import TokenError
from waiting_room.store.queue import ProofRequired, Session, TicketView
from waiting_room.web.endpoint import route
from waiting_room.web.errors import ApiError, Json, json_body
from waiting_room.web.ratelimit import retry_after_header
from waiting_room.web.state import UnknownEvent, WebState, app_state

UID_COOKIE = "wr_uid"
SESSION_COOKIE = "wr_session"
UID_MAX_AGE = 7 * 86400
JOINS_PER_SECOND = 200.0  # per client address and process
JOIN_BURST = 1000.0
CLIENT_SCOPE_KEY = "wr.client"


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


def caller_uid(request: Request) -> tuple[str, bool]:
    """The caller's wr_uid, or a new one; and whether it is new (then the response must set it)."""
    uid = request.cookies.get(UID_COOKIE, "")
    if 16 <= len(uid) <= 64 and uid.isascii() and uid.replace("-", "").replace("_", "").isalnum():
        return uid, False
    return ids.token_urlsafe(18), True


def set_uid_cookie(request: Request, response: Response, uid: str) -> None:
    response.raw_headers.append(uid_cookie(uid, _secure(request)))


def caller(request: Request) -> str:
    """The caller's address as the per-client controls key it (worked out once per request)."""
    key: str | None = request.scope.get(CLIENT_SCOPE_KEY)
    if key is None:
        key = request.scope[CLIENT_SCOPE_KEY] = client_key(request.client.host if request.client else None)
    return key


def join_limit(request: Request) -> float | None:
    """Seconds this client must wait before joining again through this process, or None."""
    wait: float | None = app_state(request).join_limiter.check(caller(request), time.monotonic())
    return wait


async def join_as(request: Request, event: str, uid: str, proof: Proof | None = None) -> tuple[TicketView, bool]:
    """The join behind both the API and the waiting page (which joins itself when the fast lane may admit)."""
    wr = app_state(request)
    view, created = await wr.queue.join(event, uid, caller(request), proof)
    wr.metrics.joined(event, created)
    return view, created


async def join(request: Request) -> Response:
    event = request.path_params["event"]
    if not is_event_id(event):
        raise UnknownEvent(event)
    refuse_cross_origin(request)
    wr = app_state(request)
    client = caller(request)
    wait = join_limit(request)
    if wait is not None:  # before the body is read: a flood costs no parsing
        raise ApiError(
            429,
            "rate_limited",
            "too many joins from this address; try again shortly",
            {"Retry-After": retry_after_header(wait)},
        )
    body = await json_body(request)  # optional, but if present it must be well-formed
    proof = None
    if "proof" in body:
        proof = verify_proof(await _proof_key(wr), event, client, body["proof"], time.time())
    uid, fresh_uid = caller_uid(request)
    try:
        view, created = await join_as(request, event, uid, proof)
    except ProofRequired as exc:
        challenge = issue_challenge(await _proof_key(wr), event, client, exc.difficulty, time.time())
        raise ApiError(exc.status, exc.code, exc.message, challenge=challenge) from None
    response = Json(ticket_json(request, view, with_ws=True), 201 if created else 200)
    if fresh_uid:
        set_uid_cookie(request, response, uid)
    return response


async def _proof_key(wr: WebState) -> bytes:
    if not wr.proof_key:
        wr.proof_key = await wr.events.proof_secret()
    key: bytes = wr.proof_key
    return key


def refuse_cross_origin(request: Request) -> None:
    """A browser on another site must not make its visitor join (or overwrite the visitor's wr_uid): an
    auto-submitted form or a no-cors fetch would. Browsers say where a request comes from; apps and
    servers send neither header, and are served."""
    origin = None
    cross_site = False
    for name, value in request.scope["headers"]:  # one pass over the raw headers, nothing decoded but these
        if name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"sec-fetch-site":
            cross_site = value.lower() == b"cross-site"
    if cross_site or (origin is not None and not app_state(request).settings.origin_allowed(origin)):
        raise ApiError(403, "cross_origin", "joins are accepted only from this waiting room's own pages")


def uid_cookie(uid: str, secure: bool) -> tuple[bytes, bytes]:
    """The header `set_cookie` would write (its SimpleCookie costs more than the rest of a join's response);
    a fresh uid is URL-safe base64, nothing to quote."""
    value = f"{UID_COOKIE}={uid}; HttpOnly; Max-Age={UID_MAX_AGE}; Path=/; SameSite=lax"
    return b"set-cookie", (value + "; Secure" if secure else value).encode()


async def ticket_status(request: Request) -> Response:
    ticket = request.path_params["ticket"]
    view = await app_state(request).queue.status(ticket)
    if view is None:
        raise ApiError(404, "unknown_ticket", "there is no such ticket")
    return Json(ticket_json(request, view))


async def _body_or_nothing(request: Request) -> dict[str, Any]:
    """The JSON body, or {} when it is malformed: these calls answer a bad body as a missing token."""
    try:
        return await json_body(request)
    except ApiError as exc:
        if exc.status != 400:
            raise
        return {}


async def redeem(request: Request) -> Response:
    body = await _body_or_nothing(request)
    wr = app_state(request)
    claims = wr.signer.verify(body.get("token"))  # refusals become the contract's errors (web.errors)
    session = await wr.queue.redeem(claims)
    wr.metrics.redeemed(claims.event)
    response = Json({"event": claims.event, "ticket": claims.ticket, "session_expires_at": session.expires_at})
    set_session_cookie(request, response, session)
    return response


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        max_age=max(1, int(session.expires_at - time.time())),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


async def release(request: Request) -> Response:
    """By the session cookie, or by the token that was redeemed (a gate, or any backend, holds that one)."""
    wr = app_state(request)
    released = await wr.queue.release_session(request.cookies.get(SESSION_COOKIE, ""))
    if not released:
        token = (await _body_or_nothing(request)).get("token")
        try:
            claims = wr.signer.verify(token, allow_expired=True) if token is not None else None
        except TokenError:
            claims = None
        released = claims is not None and await wr.queue.release(claims.ticket)
    if not released:
        raise ApiError(401, "no_session", "there is no live session to release")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def jwks(request: Request) -> Response:
    return Json(app_state(request).signer.jwks, headers={"Cache-Control": "public, max-age=300"})


async def healthz(request: Request) -> Response:
    return Json({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await app_state(request).redis.ping()
    except Exception:
        return Json({"error": {"code": "unavailable", "message": "Redis does not answer"}}, 503)
    return Json({"status": "ready"})


async def metrics(request: Request) -> Response:
    wr = app_state(request)
    page: Response = await wr.metrics.render(wr.events)
    return page


routes = [
    route("/api/events/{event}/tickets", join, methods=["POST"]),
    route("/api/tickets/{ticket}", ticket_status, methods=["GET"]),
    route("/api/redeem", redeem, methods=["POST"]),
    route("/api/sessions/release", release, methods=["POST"]),
    route("/.well-known/jwks.json", jwks, methods=["GET"]),
    route("/healthz", healthz, methods=["GET"]),
    route("/readyz", readyz, methods=["GET"]),
    route("/metrics", metrics, methods=["GET"]),
]
