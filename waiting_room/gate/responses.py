"""The gate's own answers, as raw ASGI messages (the app behind it may not be Starlette)."""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Header = tuple[bytes, bytes]

# never cached, and a URL that carried a token is not passed on in a Referer
BASE_HEADERS: list[Header] = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:1rem/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem}}</style>
</head><body><h1>{title}</h1><p>{message}</p>{link}</body></html>
"""


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[Header] = field(default_factory=list)

    async def send(self, send: Send) -> None:
        headers = [*BASE_HEADERS, *self.headers, (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_error(status: int, code: str, message: str, **extra: Any) -> Reply:
    body = json.dumps({"error": {"code": code, "message": message, **extra}}).encode()
    return Reply(status, body, [(b"content-type", b"application/json")])


def page(status: int, title: str, message: str, link: tuple[str, str] | None = None) -> Reply:
    anchor = f'<p><a href="{html.escape(link[0])}">{html.escape(link[1])}</a></p>' if link else ""
    text = PAGE.format(title=html.escape(title), message=html.escape(message), link=anchor)
    return Reply(status, text.encode(), [(b"content-type", b"text/html; charset=utf-8")])


def redirect(location: str, headers: list[Header] | None = None) -> Reply:
    return Reply(303, b"", [(b"location", location.encode("latin-1")), *(headers or [])])
