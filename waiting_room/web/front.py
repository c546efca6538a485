"""The one layer every request crosses before routing.

It does what five layers did (uvicorn's proxy headers; our security
headers, shedding and last word on unexpected errors; Starlette's exception
middleware), in one pass: each wrapped `send` in a closure of its own, and
on a join, an answer of a few hundred bytes, those layers together cost
more than the join's own handler. In order:

- the client: a trusted proxy's `X-Forwarded-For` names it (core.proxies),
  and its `X-Forwarded-Proto` the scheme; anyone else's are ignored;
- shedding: an overloaded process refuses joins and polls at once (web.shed);
- every answer, the refusals and error pages included, carries the security
  headers (web.security);
- an exception is answered by its handler (web.errors: the contract's
  refusals); one no handler takes becomes a 503 in the contract's shape,
  with one log line, instead of Starlette's bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waiting_room.core.proxies import TrustedProxies
from waiting_room.web.errors import unexpected_error
from waiting_room.web.security import secured
from waiting_room.web.shed import SHEDDABLE, Shed

log = logging.getLogger(__name__)

SCHEMES = frozenset({"http", "https", "ws", "wss"})


Handler = Callable[[Request, Exception], Awaitable[Response]]


class Front:
    def __init__(self, app: ASGIApp, proxies: TrustedProxies, shed: Shed, handlers: Mapping[type, Handler]) -> None:
        self.app = app
        self.proxies = proxies
        self.shed = shed
        self.handlers = handlers  # by exception class: the contract's answer to each refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        if self.proxies.anyone:
            self._forwarded(scope)
        if kind != "http":  # a socket's endpoint gets the server's own send: the hub pushes with it
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = secured(message.get("headers", []))
            await send(message)

        shed = self.shed if scope["path"].startswith(SHEDDABLE) else None
        if shed is not None:
            if shed.overloaded():
                await shed.refuse(send_secured)
                return
            shed.in_flight += 1
        try:
            await self.app(scope, receive, send_secured)
        except ClientDisconnect:  # gone while its body was read (a slow or stalled client): nobody to answer
            return
        except Exception as exc:
            if started:  # too late for an answer: the connection is dropped
                log.exception("error after the response started, during %s %s", scope["method"], scope["path"])
                raise
            response = await self._answer(Request(scope, receive), exc)
            await response(scope, receive, send_secured)
        finally:
            if shed is not None:
                shed.in_flight -= 1

    async def _answer(self, request: Request, exc: Exception) -> Response:
        """The handler's answer for the exception's class (the nearest in its MRO), or, for one nobody
        foresaw or a handler that fails itself, a 503 and one log line."""
        handler = next((self.handlers[cls] for cls in type(exc).__mro__ if cls in self.handlers), None)
        if handler is None:
            log.exception("unexpected error during %s %s", request.method, request.url.path)
            return unexpected_error(request)
        try:
            return await handler(request, exc)
        except Exception:
            log.exception("answering %r failed during %s %s", exc, request.method, request.url.path)
            return unexpected_error(request)

    def _forwarded(self, scope: Scope) -> None:
        peer = scope.get("client")
        if not peer or not self.proxies.trusts(peer[0]):
            return
        forwarded_for: list[str] = []
        proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value
        if proto is not None:
            scheme = proto.decode("latin-1").strip()
            if scheme in SCHEMES:
                scope["scheme"] = scheme.replace("http", "ws") if scope["type"] == "websocket" else scheme
        client = self.proxies.client(forwarded_for)
        if client is not None:
            scope["client"] = client
