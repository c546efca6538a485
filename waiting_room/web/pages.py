"""HTML pages: the event list, the waiting room, the demo order page (the protected target), admin.

The order page takes the token from a POST form (or `?token=` for simple
integrations), redeems it once and redirects to itself (303), so the token
never stays in the address bar or history; `Referrer-Policy: no-referrer`
keeps it out of third-party Referer headers.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from waiting_room.core.states import EventStatus
from waiting_room.core.tokens import TokenError
from waiting_room.store.queue import QueueError
from waiting_room.web import i18n
from waiting_room.web.public import SESSION_COOKIE, set_session_cookie
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


async def waiting(request: Request) -> Response:
    event = request.path_params["event"]
    settings = await app_state(request).event_settings(event)
    return _render(
        request,
        "waiting.html",
        event=event,
        title=settings.title,
        opens_at=settings.opens_at,
        status=str(settings.status),
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
    Route("/", index, methods=["GET"]),
    Route("/e/{event}", waiting, methods=["GET"]),
    Route("/order/{event}", order, methods=["GET"]),
    Route("/order/{event}", order_post, methods=["POST"]),
    Route("/order/{event}/complete", order_complete, methods=["POST"]),
    Route("/admin", admin_page, methods=["GET"]),
]
