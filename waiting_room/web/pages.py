"""HTML pages: the event list, the waiting room, the demo order page (the protected target), admin.

The order page takes the token from a POST form (or `?token=` for simple
integrations), redeems it once and redirects to itself (303), so the token
never stays in the address bar or history; `Referrer-Policy: no-referrer`
keeps it out of third-party Referer headers.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from waiting_room.core.event_settings import HEX_COLOR, EventSettings
from waiting_room.core.states import EventStatus, TicketState
from waiting_room.core.theme import Theme
from waiting_room.core.tokens import TokenError
from waiting_room.settings import origin_of
from waiting_room.store.queue import QueueError
from waiting_room.web import i18n
from waiting_room.web.endpoint import route
from waiting_room.web.errors import error_page
from waiting_room.web.public import (
    SESSION_COOKIE,
    caller_uid,
    join_as,
    join_limit,
    set_session_cookie,
    set_uid_cookie,
    ticket_json,
)
from waiting_room.web.security import CSP_HEADER, content_security_policy
from waiting_room.web.state import app_state

FAILED_STATUS = {"used": 409, "expired": 401, "invalid": 401}
REDEEM_OUTCOMES = {"token_used": ("used", 409), "token_expired": ("expired", 401), "invalid_token": ("invalid", 401)}


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    wr = app_state(request)
    response: Response = wr.templates.TemplateResponse(
        request, template, wr.page_context(request, **context), status_code=status_code
    )
    lang = request.query_params.get("lang")
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


async def index(request: Request) -> Response:
    wr = app_state(request)
    listed = []
    for event in await wr.events.ids():
        settings = await wr.events.get(event)
        if settings is not None and settings.status is not EventStatus.CLOSED:
            listed.append({"id": event, "title": settings.title, "status": str(settings.status)})
    return _render(request, "index.html", events=listed)


def with_token(url: str, token: str) -> str:
    """`url` with `token=` added to its query (any fragment stays last)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("token", token)])))


def _fast_lane_may_admit(settings: EventSettings) -> bool:
    """Worth joining for the visitor before any page is shown (the join itself decides, atomically)."""
    opened = settings.opens_at is None or settings.opens_at <= time.time()
    return settings.queue_only_when_full and settings.status is EventStatus.OPEN and opened


async def waiting(request: Request) -> Response:
    """The waiting page; with queue_only_when_full, a visitor admitted at once goes straight to the target.

    The join is the API's (same wr_uid cookie): if it queues the visitor instead, the page's own join
    finds the same ticket, so the place taken on arrival is kept. Anything the join refuses (a proof of
    work wanted, a per-client limit, a closed event) is left to the page, which handles it already."""
    event = request.path_params["event"]
    settings = await app_state(request).event_settings(event)
    uid, fresh_uid = caller_uid(request)
    joined = False
    if _fast_lane_may_admit(settings) and join_limit(request) is None:
        try:
            view, _ = await join_as(request, event, uid)
        except QueueError:
            pass
        else:
            joined = True
            if view.state is TicketState.ADMITTED:
                body = ticket_json(request, view)
                response: Response = RedirectResponse(with_token(body["redirect"], body["token"]), 303)
                if fresh_uid:
                    set_uid_cookie(request, response, uid)
                return response
    response = _render(request, "waiting.html", **waiting_context(event, settings))
    if settings.logo_url and not settings.logo_url.startswith("/"):
        response.headers[CSP_HEADER] = content_security_policy([origin_of(settings.logo_url)])
    if joined and fresh_uid:
        set_uid_cookie(request, response, uid)
    return response


def waiting_context(event: str, settings: EventSettings) -> dict[str, Any]:
    """What the waiting template (built-in or a shop's own) is given."""
    accent = settings.accent_color
    return {
        "event": event,
        "title": settings.title,
        "opens_at": settings.opens_at,
        "status": str(settings.status),
        "description": settings.description,
        "logo_url": settings.logo_url,
        "accent_color": accent,
        "theme_css": f"/theme/{accent[1:]}.css" if accent else None,
    }


async def theme(request: Request) -> Response:
    """The accent stylesheet of one colour: a pure function of the path, so cached for good."""
    color = "#" + request.path_params["color"]
    if not HEX_COLOR.fullmatch(color):
        return error_page(request, 404, "There is no such page.")
    return Response(
        Theme.from_accent(color).css(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


async def order(request: Request) -> Response:
    """GET: with ?token= redeem it, else show the form to a live session, else back to the line."""
    event = request.path_params["event"]
    token = request.query_params.get("token")
    if token:
        return await _redeem_and_return(request, event, token, from_url=True)
    wr = app_state(request)
    settings = await wr.event_settings(event)
    failed = request.query_params.get("failed")
    if failed in FAILED_STATUS:
        return _render(request, "order.html", FAILED_STATUS[failed], event=event, title=settings.title, state=failed)
    session = await wr.queue.session(request.cookies.get(SESSION_COOKIE, ""))
    if session is None or session.event != event:
        return RedirectResponse(f"/e/{event}", 303)
    return _render(
        request, "order.html", event=event, title=settings.title, state="form", session_expires_at=session.expires_at
    )


async def order_post(request: Request) -> Response:
    event = request.path_params["event"]
    form = await request.form(max_files=0, max_fields=10)
    token = form.get("token")
    return await _redeem_and_return(request, event, token if isinstance(token, str) else "")


async def _redeem_and_return(request: Request, event: str, token: str, from_url: bool = False) -> Response:
    """Redeem and go to the order form (303). A token that came in the URL leaves it either way."""
    wr = app_state(request)
    settings = await wr.event_settings(event)
    try:
        claims = wr.signer.verify(token)
        if claims.event != event:
            raise TokenError("invalid_token", "the token is for another event")
        session = await wr.queue.redeem(claims)
    except (TokenError, QueueError) as exc:
        state, status = REDEEM_OUTCOMES.get(exc.code, ("invalid", 401))
        if from_url:
            return RedirectResponse(f"/order/{event}?failed={state}", 303)
        return _render(
            request, "order.html", status, event=event, title=settings.title, state=state, error_code=exc.code
        )
    wr.metrics.redeemed(event)
    response = RedirectResponse(f"/order/{event}", 303)
    set_session_cookie(request, response, session)
    return response


async def order_complete(request: Request) -> Response:
    event = request.path_params["event"]
    wr = app_state(request)
    settings = await wr.event_settings(event)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie.startswith(f"{event}.") or not await wr.queue.release_session(cookie):
        return RedirectResponse(f"/e/{event}", 303)
    response = _render(request, "order.html", event=event, title=settings.title, state="done")
    response.delete_cookie(SESSION_COOKIE)
    return response


async def admin_page(request: Request) -> Response:
    return _render(request, "admin.html")


routes = [
    route("/", index, methods=["GET"]),
    route("/e/{event}", waiting, methods=["GET"]),
    route("/theme/{color}.css", theme, methods=["GET"]),
    route("/order/{event}", order, methods=["GET"]),
    route("/order/{event}", order_post, methods=["POST"]),
    route("/order/{event}/complete", order_complete, methods=["POST"]),
    route("/admin", admin_page, methods=["GET"]),
]
