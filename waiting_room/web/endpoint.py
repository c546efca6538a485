"""A request handler served as a plain ASGI app.

Starlette wraps a function endpoint in an exception layer of its own (a
Request, a closure around `send`, a coroutine). In our stack it finds no
handlers and re-raises to the front (web.front), which answers with them;
on a join that layer cost about as much as the JSON of the answer. Every
route of ours is made with `route`, so none has it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


class Endpoint:
    __slots__ = ("handler",)

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


def route(path: str, handler: Handler, methods: list[str]) -> Route:
    return Route(path, Endpoint(handler), methods=methods, name=handler.__name__)
