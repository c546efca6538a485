"""GET /openapi.json: an OpenAPI 3.1 description of every public and admin call, errors included.

Written out by hand next to the routes, not generated from them: the description is a promise to
clients, and a test compares it with the routes (and a fuzzer with the answers), so it stays true.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from waiting_room.core import messages
from waiting_room.core.event_settings import INTEGER_BOUNDS, MAX_DESCRIPTION, MAX_TITLE
from waiting_room.core.proof import ALGORITHM
from waiting_room.core.states import EventStatus, TicketState
from waiting_room.web.endpoint import route

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "string"}}}

ERRORS = {
    400: "the body is not a JSON object (or not valid JSON, or holds a lone surrogate)",
    401: "not authorized",
    403: "refused",
    404: "no such thing",
    409: "conflict with the current state",
    413: "the body is over 64 KiB",
    422: "a value is not acceptable; `field` names it",
    428: "proof of work is required: `challenge` says what to solve",
    429: "too many requests from this client",
    503: "briefly unavailable (Redis), try again",
}


def _errors(*statuses: int) -> dict[str, Any]:
    out = {}
    for status in statuses:
        headers = RETRY_AFTER if status in (429, 503) else None
        out[str(status)] = _json(_ref("Error"), ERRORS[status], headers)
    return out


def _settings_fields() -> dict[str, Any]:
    """One schema per event setting (core.event_settings validates the same bounds)."""
    fields: dict[str, Any] = {
        "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
        "opens_at": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 32503680000},
        "status": {"type": "string", "enum": [s.value for s in EventStatus]},
        "target_url": {"type": "string", "minLength": 1, "maxLength": 2000},
        "queue_only_when_full": {"type": "boolean"},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION, "description": "plain text, never HTML"},
        "logo_url": {"type": ["string", "null"], "maxLength": 2000, "description": "an https:// URL or a /path"},
        "accent_color": {"type": ["string", "null"], "pattern": "^(#[0-9a-fA-F]{6})?$"},
    }
    for field, (low, high) in INTEGER_BOUNDS.items():
        fields[field] = {"type": "integer", "minimum": low, "maximum": high}
    return fields


def _schemas() -> dict[str, Any]:
    settings_fields = _settings_fields()
    ticket_fields: dict[str, Any] = {
        "ticket": {"type": "string"},
        "event": {"type": "string"},
        "state": {"type": "string", "enum": [s.value for s in TicketState]},
        "position": {"type": ["integer", "null"], "minimum": 1},
        "waiting": {"type": "integer", "minimum": 0},
        "eta_seconds": {"type": ["integer", "null"], "minimum": 0},
        "token": {"type": "string", "description": "when admitted: the admission token (JWT)"},
        "expires_at": {"type": "number", "description": "when admitted: the token's expiry"},
        "redirect": {"type": "string", "description": "when admitted: where to present the token"},
    }
    counters = ("waiting", "admitted_pending", "active", "served_total", "tickets_issued", "connections")
    stats_fields: dict[str, Any] = {name: {"type": "integer", "minimum": 0} for name in counters}
    stats_fields.update(
        rate_per_minute={"type": "integer"},
        observed_rate_per_minute={"type": "number"},
    )
    settings: dict[str, Any] = {"type": "object", "properties": settings_fields, "required": sorted(settings_fields)}
    event_id = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                        "message": {"type": "string"},
                        "field": {"type": "string", "description": "with 422: the field at fault"},
                        "challenge": _ref("Challenge"),
                    },
                }
            },
        },
        "Challenge": {
            "type": "object",
            "description": (
                "find a nonce such that SHA-256 of the UTF-8 text `{challenge}:{nonce}` starts with"
                " `difficulty` zero bits; send both back as the join body's `proof`"
            ),
            "required": ["challenge", "difficulty", "algorithm", "expires_at"],
            "properties": {
                "challenge": {"type": "string"},
                "difficulty": {"type": "integer", "minimum": 1},
                "algorithm": {"const": ALGORITHM},
                "expires_at": {"type": "integer"},
            },
        },
        "Ticket": {
            "type": "object",
            "required": ["ticket", "event", "state", "position", "waiting", "eta_seconds"],
            "properties": ticket_fields,
        },
        "JoinedTicket": {
            "allOf": [
                _ref("Ticket"),
                {
                    "type": "object",
                    "required": ["opens_at", "ws"],
                    "properties": {"opens_at": {"type": ["number", "null"]}, "ws": {"type": "string"}},
                },
            ]
        },
        "Redeemed": {
            "type": "object",
            "required": ["event", "ticket", "session_expires_at"],
            "properties": {
                "event": {"type": "string"},
                "ticket": {"type": "string"},
                "session_expires_at": {"type": "number"},
            },
        },
        "EventSettings": settings,
        "EventSettingsChanges": {"type": "object", "properties": settings_fields, "additionalProperties": False},
        "Event": {
            "allOf": [
                settings,
                {"type": "object", "required": ["id"], "properties": {"id": event_id}},
            ]
        },
        "EventWithStats": {
            "allOf": [_ref("Event"), {"type": "object", "required": ["stats"], "properties": {"stats": _ref("Stats")}}]
        },
        "Stats": {"type": "object", "required": sorted(stats_fields), "properties": stats_fields},
        "Notice": {
            "type": "object",
            "required": ["id", "text", "level", "at"],
            "properties": {
                "id": {"type": "string"},
                "text": {"type": "string"},
                "level": {"type": "string", "enum": list(messages.NOTICE_LEVELS)},
                "at": {"type": "number"},
            },
        },
        "NoticeInput": {
            "type": "object",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": messages.MAX_NOTICE_TEXT},
                "level": {"type": "string", "enum": list(messages.NOTICE_LEVELS), "default": "info"},
            },
        },
        "Token": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}},
    }


def _body(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


EVENT = _path("event", "event id, ^[a-z0-9][a-z0-9-]{0,63}$")
ADMIN: list[dict[str, list[str]]] = [{"admin": []}]


def _paths() -> dict[str, Any]:
    public: dict[str, Any] = {
        "/api/events/{event}/tickets": {
            "post": {
                "summary": "join the line (the caller's existing ticket if its wr_uid cookie has one)",
                "parameters": [EVENT],
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {
                            "proof": {
                                "type": "object",
                                "description": "a solved Challenge, when the event asks for proof of work",
                                "required": ["challenge", "nonce"],
                                "properties": {"challenge": {"type": "string"}, "nonce": {"type": "string"}},
                            }
                        },
                    },
                    required=False,
                ),
                "responses": {
                    "201": _json(_ref("JoinedTicket"), "a new ticket"),
                    "200": _json(_ref("JoinedTicket"), "the caller's existing ticket"),
                    **_errors(400, 403, 404, 409, 413, 428, 429, 503),
                },
            }
        },
        "/api/tickets/{ticket}": {
            "get": {
                "summary": "where a ticket stands; when admitted, its token",
                "parameters": [_path("ticket", "a ticket id")],
                "responses": {"200": _json(_ref("Ticket"), "the ticket"), **_errors(404, 503)},
            }
        },
        "/api/redeem": {
            "post": {
                "summary": "present an admission token once; opens a session (cookie)",
                "requestBody": _body(_ref("Token"), required=True),
                "responses": {"200": _json(_ref("Redeemed"), "redeemed"), **_errors(401, 409, 413, 503)},
            }
        },
        "/api/sessions/release": {
            "post": {
                "summary": "end a session (by its cookie, or by the token that was redeemed); frees capacity",
                "requestBody": _body(_ref("Token"), required=False),
                "responses": {"204": {"description": "released"}, **_errors(401, 413, 503)},
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "the public keys that verify admission tokens",
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array"}}}, "JWKS"
                    )
                },
            }
        },
        "/healthz": {"get": {"summary": "the process runs", "responses": {"200": _json({"type": "object"}, "ok")}}},
        "/readyz": {
            "get": {
                "summary": "Redis answers",
                "responses": {"200": _json({"type": "object"}, "ready"), **_errors(503)},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text format", "content": {"text/plain": {"schema": {}}}}},
            }
        },
        "/openapi.json": {
            "get": {"summary": "this description", "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}
        },
    }
    admin_errors = (401, 503)
    admin: dict[str, Any] = {
        "/api/admin/events": {
            "get": {
                "summary": "every event with its settings and stats",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["events"],
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["id", "settings", "stats"],
                                        "properties": {
                                            "id": {"type": "string"},
                                            "settings": _ref("EventSettings"),
                                            "stats": _ref("Stats"),
                                        },
                                    },
                                }
                            },
                        },
                        "events",
                    ),
                    **_errors(*admin_errors),
                },
            }
        },
        "/api/admin/events/{event}": {
            "get": {
                "summary": "one event's settings and stats",
                "parameters": [EVENT],
                "responses": {"200": _json(_ref("EventWithStats"), "the event"), **_errors(404, *admin_errors)},
            },
            "put": {
                "summary": "create or update settings (partial; {} creates with the defaults)",
                "parameters": [EVENT],
                "requestBody": _body(_ref("EventSettingsChanges"), required=False),
                "responses": {
                    "200": _json(_ref("Event"), "the full settings"),
                    **_errors(400, 413, 422, *admin_errors),
                },
            },
        },
        "/api/admin/events/{event}/status": {
            "post": {
                "summary": "change the status; clients are told at once",
                "parameters": [EVENT],
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": [s.value for s in EventStatus]}},
                    },
                    required=True,
                ),
                "responses": {
                    "200": _json(_ref("Event"), "the full settings"),
                    **_errors(400, 404, 413, 422, *admin_errors),
                },
            }
        },
        "/api/admin/events/{event}/notices": {
            "post": {
                "summary": "a notice to every client of the event",
                "parameters": [EVENT],
                "requestBody": _body(_ref("NoticeInput"), required=True),
                "responses": {
                    "201": _json(_ref("Notice"), "sent"),
                    **_errors(400, 404, 413, 422, *admin_errors),
                },
            }
        },
        "/api/admin/notices": {
            "post": {
                "summary": "a notice to every event",
                "requestBody": _body(_ref("NoticeInput"), required=True),
                "responses": {"201": _json(_ref("Notice"), "sent"), **_errors(400, 413, 422, *admin_errors)},
            }
        },
        "/api/admin/events/{event}/stats": {
            "get": {
                "summary": "the event's counters",
                "parameters": [EVENT],
                "responses": {"200": _json(_ref("Stats"), "stats"), **_errors(404, *admin_errors)},
            }
        },
    }
    for item in admin.values():
        for operation in item.values():
            operation["security"] = ADMIN
            operation["tags"] = ["admin"]
    for item in public.values():
        for operation in item.values():
            operation["tags"] = ["public"]
    return {**public, **admin}


def description() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "waiting_room",
            "version": "1",
            "description": 'A push-based virtual waiting room. Every error is {"error": {"code", "message"}}.',
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer", "description": "WR_ADMIN_TOKEN"}},
        },
    }


DESCRIPTION = description()


async def openapi(request: Request) -> Response:
    return JSONResponse(DESCRIPTION)


routes = [route("/openapi.json", openapi, methods=["GET"])]
