"""The admin API: bearer-token auth on every call, settings validated field by field."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from waiting_room.core import messages
from waiting_room.core.event_settings import InvalidSettings
from waiting_room.core.states import EventStatus
from waiting_room.core.tickets import is_event_id
from waiting_room.web.endpoint import route
from waiting_room.web.errors import ApiError, json_body
from waiting_room.web.state import UnknownEvent, WebState, app_state


def token_ok(given: Any, expected: str) -> bool:
    """Constant-time; an unset admin token refuses everyone."""
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def authorized(request: Request) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token_ok(given.strip(), app_state(request).settings.admin_token)


def _require_admin(request: Request) -> WebState:
    if not authorized(request):
        raise ApiError(
            401,
            "unauthorized",
            "a valid admin bearer token is required",
            {"WWW-Authenticate": 'Bearer realm="waiting-room"'},
        )
    return app_state(request)


def _event_id(request: Request) -> str:
    event: str = request.path_params["event"]
    if not is_event_id(event):
        raise UnknownEvent(event)
    return event


async def list_events(request: Request) -> Response:
    wr = _require_admin(request)
    return JSONResponse({"events": await wr.events.overview()})


async def get_event(request: Request) -> Response:
    wr = _require_admin(request)
    event = _event_id(request)
    settings = await wr.event_settings(event)
    return JSONResponse({"id": event, **settings.to_json(), "stats": await wr.events.stats(event)})


async def put_event(request: Request) -> Response:
    wr = _require_admin(request)
    event: str = request.path_params["event"]
    if not is_event_id(event):
        raise ApiError(422, "invalid_settings", "the event id must match ^[a-z0-9][a-z0-9-]{0,63}$", field="event")
    changes = await json_body(request)
    try:
        settings, _ = await wr.events.put(event, changes)
    except InvalidSettings as exc:
        raise ApiError(422, "invalid_settings", f"{exc.field} {exc.message}", field=exc.field) from None
    return JSONResponse({"id": event, **settings.to_json()})


async def set_status(request: Request) -> Response:
    wr = _require_admin(request)
    event = _event_id(request)
    body = await json_body(request)
    try:
        status = EventStatus(str(body.get("status")))
    except ValueError:
        allowed = ", ".join(s.value for s in EventStatus)
        raise ApiError(422, "invalid_settings", f"status must be one of {allowed}", field="status") from None
    settings = await wr.events.set_status(event, status)
    if settings is None:
        raise UnknownEvent(event)
    return JSONResponse({"id": event, **settings.to_json()})


def _notice_input(body: dict[str, Any]) -> tuple[str, str]:
    text, level = body.get("text"), body.get("level", "info")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "invalid_notice", "text must be a non-empty string", field="text")
    if len(text) > messages.MAX_NOTICE_TEXT:
        raise ApiError(
            422, "invalid_notice", f"text may be at most {messages.MAX_NOTICE_TEXT} characters", field="text"
        )
    if level not in messages.NOTICE_LEVELS:
        raise ApiError(
            422, "invalid_notice", f"level must be one of {', '.join(messages.NOTICE_LEVELS)}", field="level"
        )
    return text, level


async def event_notice(request: Request) -> Response:
    wr = _require_admin(request)
    event = _event_id(request)
    text, level = _notice_input(await json_body(request))
    await wr.event_settings(event)
    return JSONResponse(await wr.events.post_notice(event, text, level), 201)


async def global_notice(request: Request) -> Response:
    wr = _require_admin(request)
    text, level = _notice_input(await json_body(request))
    return JSONResponse(await wr.events.post_notice(None, text, level), 201)


async def event_stats(request: Request) -> Response:
    wr = _require_admin(request)
    event = _event_id(request)
    stats = await wr.events.stats(event)
    if stats is None:
        raise UnknownEvent(event)
    return JSONResponse(stats)


async def event_resource(request: Request) -> Response:
    """GET and PUT of one event: one route, so a 405 on this path names both in its Allow header."""
    return await (put_event if request.method == "PUT" else get_event)(request)


async def admin_not_found(request: Request) -> Response:
    """Anything else under /api/admin/: 401 without the token (nothing about the API is told), else
    405 naming the methods if the path is a call's, else 404."""
    _require_admin(request)
    allowed = {
        method
        for call in routes
        if call.name != admin_not_found.__name__ and call.matches(request.scope)[0] is Match.PARTIAL
        for method in call.methods or ()
    }
    if allowed:
        headers = {"Allow": ", ".join(sorted(allowed))}
        raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed here", headers)
    raise ApiError(404, "not_found", "no such admin endpoint")


routes = [
    route("/api/admin/events", list_events, methods=["GET"]),
    route("/api/admin/events/{event}", event_resource, methods=["GET", "PUT"]),
    route("/api/admin/events/{event}/status", set_status, methods=["POST"]),
    route("/api/admin/events/{event}/notices", event_notice, methods=["POST"]),
    route("/api/admin/events/{event}/stats", event_stats, methods=["GET"]),
    route("/api/admin/notices", global_notice, methods=["POST"]),
    route("/api/admin/{rest:path}", admin_not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
]
