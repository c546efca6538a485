"""A web process's state, typed: built once by the app's lifespan, read by every handler through `app_state`.

Starlette hands the lifespan's state to each request as an untyped
attribute; reading it here, once, gives handlers a `WebState` that strict
mypy checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from starlette.requests import HTTPConnection
from starlette.templating import Jinja2Templates

from waiting_room.core.event_settings import EventSettings
from waiting_room.core.tickets import is_event_id
from waiting_room.core.tokens import Signer
from waiting_room.settings import Settings
from waiting_room.store.events import Events
from waiting_room.store.queue import Queue
from waiting_room.web import i18n
from waiting_room.web.hub import Hub
from waiting_room.web.metrics import Metrics
from waiting_room.web.ratelimit import RateLimiter

STATE_KEY = "wr"  # the lifespan yields {STATE_KEY: WebState}


class UnknownEvent(Exception):
    """No such event: the one way every handler says it (web/errors.py answers JSON or a page)."""

    def __init__(self, event: str) -> None:
        super().__init__(f"there is no event {event[:80]!r}")
        self.event = event


@dataclass
class WebState:
    """Everything a request handler needs, built once per process."""

    settings: Settings
    redis: Redis
    queue: Queue
    events: Events
    signer: Signer
    hub: Hub
    templates: Jinja2Templates
    metrics: Metrics
    join_limiter: RateLimiter
    proof_key: bytes = b""  # read from Redis when first needed (Events.proof_secret)

    async def event_settings(self, event: str) -> EventSettings:
        """The event's settings; raises UnknownEvent for a malformed id or an event that does not exist."""
        settings = await self.events.get(event) if is_event_id(event) else None
        if settings is None:
            raise UnknownEvent(event)
        return settings

    def page_context(self, request: HTTPConnection, **extra: Any) -> dict[str, Any]:
        chosen = request.query_params.get("lang") or request.cookies.get(i18n.LANG_COOKIE)
        lang = i18n.pick_language(request.headers.get("accept-language"), chosen)
        return {**i18n.page_context(lang), **extra}


def maybe_state(conn: HTTPConnection) -> WebState | None:
    """The state, or None before the lifespan has built it (an error while starting)."""
    found = conn.scope.get("state", {}).get(STATE_KEY)  # what conn.state reads, without building a State
    return found if isinstance(found, WebState) else None


def app_state(conn: HTTPConnection) -> WebState:
    found = maybe_state(conn)
    if found is None:
        raise RuntimeError("the web process's state is not built (is the lifespan running?)")
    return found
