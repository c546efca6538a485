"""Headers every response carries: no referrer (tokens never leak), no framing, no sniffing,
and a content security policy: the pages run only their own scripts (no inline JS), so injected
markup cannot execute. Forms may post to other origins: an event's target may live elsewhere."""

from __future__ import annotations

from collections.abc import Iterable

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


def secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A response's headers with ours added, but for those it set itself: a page may set a narrower
    or extended policy of its own (one logo's origin)."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *(header for header in HEADERS if header[0] not in present)]
