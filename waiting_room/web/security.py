"""Headers every response carries: no referrer (tokens never leak), no framing, no sniffing,
and a content security policy: the pages run only their own scripts (no inline JS), so injected
markup cannot execute. Forms may post to other origins: an event's target may live elsewhere."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP_HEADER = "content-security-policy"


def content_security_policy(image_origins: Iterable[str] = ()) -> str:
    """The policy; `image_origins`: other origins a page may show images from (an event's logo)."""
    images = " ".join(["'self'", "data:", *image_origins])
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src {images}; "
        "connect-src 'self' ws: wss:; form-action 'self' http: https:; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    )


HEADERS = [
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (CSP_HEADER.encode(), content_security_policy().encode()),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                # a page may set a narrower-or-extended policy of its own (one logo's origin): keep that one
                present = {name.lower() for name, _ in headers}
                message["headers"] = [*headers, *(h for h in HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)
