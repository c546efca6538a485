"""AdmissionGate: lets through only requests the waiting room has admitted, for the paths it guards.

Order of checks, cheapest first: unguarded paths and live gate sessions
never touch the network; a token is verified offline before the waiting
room is asked to spend it, so garbage costs the waiting room nothing and an
outage at redemption leaves the token valid for a retry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit

import httpx

from waiting_room.core.tokens import TokenError
from waiting_room.gate import responses
from waiting_room.gate.guard import Guard, compile_guard
from waiting_room.gate.responses import Reply, Send
from waiting_room.gate.session import (
    COOKIE_PREFIX,
    GateSession,
    SessionCodec,
    cookie_name,
    delete_cookie,
    parse_cookies,
    set_cookie,
)
from waiting_room.gate.tokens import KeySet, Verifier
from waiting_room.gate.upstream import Unavailable, WaitingRoom

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RELEASE_PATH = "/.waiting-room/release"
MAX_FORM = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
REFUSAL_PAGES = {
    "invalid_token": ("This admission is not valid", "Please join the line again."),
    "token_expired": ("This admission has expired", "Your turn came but was not used in time. Please join again."),
    "token_used": ("This admission was already used", "Each admission opens one session. Please join again."),
}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


def _is_browser(scope: Scope) -> bool:
    return "text/html" in _header(scope, b"accept").lower()


def _secure(scope: Scope) -> bool:
    # behind a TLS-terminating proxy, let the server set the scheme (uvicorn --proxy-headers)
    return scope.get("scheme") in ("https", "wss")


def _query_without_token(query: str) -> str:
    """Drops only `token`, leaving every other pair exactly as it was sent."""
    pairs = [p for p in query.split("&") if p and unquote_plus(p.partition("=")[0]) != "token"]
    return "&".join(pairs)


def _location(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(str(scope.get("path", "/")))
    path = str(scope.get("root_path", "")) + path if not isinstance(raw, bytes) else path
    query = _query_without_token(scope.get("query_string", b"").decode("latin-1"))
    return path + ("?" + query if query else "")


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


class AdmissionGate:
    """An ASGI middleware; see the README's "The gate" for the whole behaviour.

    `jwks_refetch_interval` bounds how often an unknown `kid` may trigger a JWKS fetch;
    `http_client` lets an operator bring their own (proxies, mTLS); timeouts are `timeout` seconds.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        waiting_room_url: str,
        guard: Guard,
        secret: str | bytes,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        jwks_refetch_interval: float = 1.0,
    ) -> None:
        base = waiting_room_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"waiting_room_url must be an http(s) URL, got {waiting_room_url!r}")
        self.app = app
        self.waiting_room_url = base
        self._event_of = compile_guard(guard)
        self._codec = SessionCodec(secret)
        self.waiting_room = WaitingRoom(base, http_client, timeout)
        self._verifier = Verifier(base, KeySet(self.waiting_room.jwks, jwks_refetch_interval))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        if kind == "http" and scope["method"] == "POST" and scope["path"] == RELEASE_PATH:
            reply = await self._release(scope)
            await reply.send(send)
            return
        # a CORS preflight carries no cookies by design: the app answers it, and the real request is gated
        preflight = kind == "http" and scope["method"] == "OPTIONS"
        event = self._event_of(scope) if kind in ("http", "websocket") and not preflight else None
        if event is None or self._session(scope, event) is not None:
            await self.app(scope, receive, send)
            return
        if kind == "websocket":  # a socket cannot follow a redirect; refused before the handshake
            await send({"type": "websocket.close", "code": 4403})
            return
        token, source = await self._token(scope, receive)
        if token is None:
            await self._admission_required(scope, event).send(send)
            return
        try:
            await self._verifier.verify(token, event)
            expires_at = await self.waiting_room.redeem(token)
        except TokenError as exc:
            await self._refused(scope, event, exc).send(send)
            return
        except Unavailable:
            await self._unavailable(scope, event).send(send)
            return
        session = GateSession(event, expires_at, token)
        cookie = set_cookie(cookie_name(event), self._codec.encode(session), expires_at - time.time(), _secure(scope))
        if source == "bearer":  # an API client: its request goes on, now with a session
            await self.app(scope, receive, _with_headers(send, [(b"set-cookie", cookie)]))
            return
        await responses.redirect(_location(scope), [(b"set-cookie", cookie)]).send(send)

    def _closing_on_shutdown(self, receive: Receive) -> Receive:
        async def receiving() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.waiting_room.aclose()
            return message

        return receiving

    def _session(self, scope: Scope, event: str) -> GateSession | None:
        value = parse_cookies(_header(scope, b"cookie")).get(cookie_name(event))
        session = self._codec.decode(value, time.time())
        return session if session is not None and session.event == event else None

    async def _token(self, scope: Scope, receive: Receive) -> tuple[str | None, str]:
        """The admission token and where it came from: the Authorization header, the query, a POST form."""
        scheme, _, credentials = _header(scope, b"authorization").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip(), "bearer"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if query.get("token"):
            return query["token"], "query"
        content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
        if scope["method"] == "POST" and content_type == FORM_TYPE:
            # the gate answers this request itself whatever the form says, so the body is not replayed
            body = b""
            while len(body) <= MAX_FORM:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            if len(body) <= MAX_FORM:
                form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
                if form.get("token"):
                    return form["token"], "form"
        return None, ""

    def _page_url(self, event: str) -> str:
        return f"{self.waiting_room_url}/e/{event}"

    def _admission_required(self, scope: Scope, event: str) -> Reply:
        page = self._page_url(event)
        if _is_browser(scope):
            return responses.redirect(page)
        return responses.json_error(
            403,
            "admission_required",
            f"this path is protected by the waiting room for {event!r}: join the line first",
            event=event,
            page=page,
            join=f"{self.waiting_room_url}/api/events/{event}/tickets",
        )

    def _refused(self, scope: Scope, event: str, exc: TokenError) -> Reply:
        status = 409 if exc.code == "token_used" else 401
        if not _is_browser(scope):
            return responses.json_error(status, exc.code, exc.message, event=event, page=self._page_url(event))
        title, message = REFUSAL_PAGES.get(exc.code, REFUSAL_PAGES["invalid_token"])
        return responses.page(status, title, message, (self._page_url(event), "Back to the waiting room"))

    def _unavailable(self, scope: Scope, event: str) -> Reply:
        message = "the waiting room is briefly unavailable; your admission is still valid, try again in a moment"
        if _is_browser(scope):
            reply = responses.page(503, "Please try again in a moment", message.capitalize() + ".")
        else:
            reply = responses.json_error(503, "unavailable", message, event=event)
        reply.headers.append((b"retry-after", b"2"))
        return reply

    async def _release(self, scope: Scope) -> Reply:
        """Ends every gate session the caller holds (or only `?event=`'s) and frees each one's capacity."""
        only = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get("event")
        cookies = parse_cookies(_header(scope, b"cookie"))
        names = [n for n in cookies if n.startswith(COOKIE_PREFIX) and (only is None or n == cookie_name(only))]
        for name in names:
            session = self._codec.decode(cookies[name])
            if session is not None and cookie_name(session.event) == name:
                try:
                    await self.waiting_room.release(session.token)
                except Unavailable:
                    return self._unavailable(scope, session.event)
        secure = _secure(scope)
        return Reply(204, headers=[(b"set-cookie", delete_cookie(name, secure)) for name in names])
