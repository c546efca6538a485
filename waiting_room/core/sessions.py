"""Session cookies: a secret of their own, never a ticket id or anything derived from one.

A ticket id is shown in the page's storage, the WebSocket and status URLs, and so in proxy logs;
whoever holds a session cookie holds capacity at the target and may release it. The cookie's value is
``{event}.{secret}``: the event says whose keys (hash tag) hold the session, the secret (256 random
bits) names it there. Nothing about the ticket can be learnt from it, nor it from the ticket.
"""

from __future__ import annotations

import re

from waiting_room.core import ids
from waiting_room.core.tickets import is_event_id

_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_session(event: str) -> str:
    return f"{event}.{ids.token_urlsafe(32)}"


def parse_session(value: str) -> tuple[str, str] | None:
    """(event, secret) of a well-formed session cookie, else None."""
    event, dot, secret = value.partition(".")
    if not dot or not is_event_id(event) or not _SECRET.fullmatch(secret):
        return None
    return event, secret
