"""Errors as the contract shapes them: JSON with a code under /api/ and /.well-known/, pages elsewhere."""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from waiting_room.core.tokens import TokenError
from waiting_room.store.queue import QueueError
from waiting_room.web.state import UnknownEvent, maybe_state

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class Json(JSONResponse):
    """JSONResponse's bytes, from one encoder: json.dumps with options builds a new encoder per call,
    which on the join path cost more than the encoding."""

    _encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def render(self, content: Any) -> bytes:
        return self._encoder.encode(content).encode("utf-8")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return Json({"error": {"code": code, "message": message, **extra}}, status, headers=headers)


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/.well-known/")) or path in ("/healthz", "/readyz", "/metrics", "/openapi.json")


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object; no body (or an empty one) is {}."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, "payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    if not _unicode_only(data):
        raise ApiError(400, "invalid_json", "the body holds a lone surrogate (\\ud800-\\udfff), which is not text")
    return data


def _unicode_only(data: Any) -> bool:
    """No string (key or value) holds a lone surrogate: JSON's \\u escapes allow them, UTF-8 (Redis, JWT
    libraries, templates) cannot encode them, so they are refused at the door rather than deep inside."""
    stack = [data]
    while stack:  # not recursive: the depth is the client's choice
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)


async def on_refusal(request: Request, exc: Exception) -> Response:
    """A refusal from the queue (its own status) or a token check (always 401), in the contract's shape."""
    assert isinstance(exc, QueueError | TokenError)
    if isinstance(exc, TokenError):
        return error_response(401, exc.code, exc.message)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(exc.status, exc.code, exc.message, headers)


async def on_unknown_event(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnknownEvent)
    if wants_json(request):
        return error_response(404, "unknown_event", str(exc))
    return error_page(request, 404, "There is no such event.")


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if wants_json(request):
        code = HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))
    return error_page(request, exc.status_code, str(exc.detail))


async def on_redis_error(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable during %s %s: %s", request.method, request.url.path, exc)
    headers = {"Retry-After": "2"}
    if wants_json(request):
        return error_response(503, "unavailable", "the queue is briefly unavailable, try again", headers)
    return error_page(request, 503, "The waiting room is briefly unavailable. Please try again.", headers)


def unexpected_error(request: Request) -> Response:
    if wants_json(request):
        return error_response(503, "unavailable", "something went wrong, try again", {"Retry-After": "2"})
    return error_page(request, 503, "Something went wrong. Please try again.", {"Retry-After": "2"})


def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An HTML error page (plain text if the templates are not loaded yet)."""
    wr = maybe_state(request)
    if wr is None:
        return PlainTextResponse(message, status, headers=headers)
    context = wr.page_context(request, title=str(status), status_code=status, message=message)
    page: Response = wr.templates.TemplateResponse(request, "error.html", context, status_code=status, headers=headers)
    return page


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: on_api_error,
    QueueError: on_refusal,
    UnknownEvent: on_unknown_event,
    TokenError: on_refusal,
    HTTPException: on_http_exception,
    RedisError: on_redis_error,
    OSError: on_redis_error,
}
