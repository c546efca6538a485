"""Per-event settings: defaults, validation, and their form in a Redis hash. Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from waiting_room.core.proof import MAX_DIFFICULTY
from waiting_room.core.states import EventStatus

MAX_TITLE = 200
MAX_DESCRIPTION = 1000
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class InvalidSettings(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EventSettings:
    title: str
    rate_per_minute: int = 600
    max_active: int = 0
    token_ttl_seconds: int = 300
    session_ttl_seconds: int = 600
    abandon_after_seconds: int = 120
    opens_at: float | None = None
    status: EventStatus = EventStatus.OPEN
    target_url: str = ""
    # abuse controls per client address (see core.clients), 0 = off: offices and mobile carriers share one
    client_joins_per_minute: int = 0  # new tickets a minute (a minute's worth may come at once)
    client_max_waiting: int = 0  # waiting tickets at once
    pow_difficulty: int = 0  # proof of work at join, in leading zero bits (core.proof)
    queue_only_when_full: bool = False
    description: str = ""
    logo_url: str | None = None
    accent_color: str | None = None  # None: the built-in blue

    @classmethod
    def defaults(cls, event: str) -> EventSettings:
        return cls(title=event, target_url=f"/order/{event}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        return data

    def to_redis(self) -> dict[str, str]:
        """Flat strings for HSET; an absent field has its default (opens_at absent means open now).

        The flag is "1" or "0" because join.lua reads it."""
        out = {k: str(v) for k, v in self.to_json().items() if v is not None and v != ""}
        if self.opens_at is not None:
            out["opens_at"] = repr(float(self.opens_at))
        out["queue_only_when_full"] = "1" if self.queue_only_when_full else "0"
        return out

    @classmethod
    def from_redis(cls, event: str, raw: Mapping[str, str]) -> EventSettings:
        base = cls.defaults(event)
        merged = {**base.to_json(), **{k: v for k, v in raw.items() if k in FIELDS}}
        return validate(base, merged)


def _integer(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InvalidSettings(field, "must be an integer")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise InvalidSettings(field, "must be an integer") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidSettings(field, "must be an integer")
    if not low <= value <= high:
        raise InvalidSettings(field, f"must be between {low} and {high}")
    return value


def _opens_at(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidSettings("opens_at", "must be unix seconds or null") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSettings("opens_at", "must be unix seconds or null")
    # compared before any float(): a 400-digit integer does not fit one (and NaN fails the comparison)
    if not 0 <= value < 32503680000:  # year 3000
        raise InvalidSettings("opens_at", "must be unix seconds between 1970 and 3000")
    return float(value)


def _text(field: str, value: Any, longest: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidSettings(field, "must be a non-empty string")
    if len(value) > longest or any(ord(c) < 32 for c in value):
        raise InvalidSettings(field, f"must be at most {longest} printable characters")
    return value


def _target(value: Any) -> str:
    text = _text("target_url", value, 2000)
    parts = urlsplit(text)
    absolute = parts.scheme in ("http", "https") and bool(parts.netloc)
    if not absolute and not _is_local_path(text, parts.scheme, parts.netloc):
        raise InvalidSettings("target_url", "must be an http(s) URL or a path starting with /")
    return text


def _flag(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "0", "true", "false"):
        return value.lower() in ("1", "true")
    raise InvalidSettings(field, "must be true or false")


def _description(value: Any) -> str:
    """Plain text: line breaks and tabs are kept, other control characters refused (it is never HTML)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSettings("description", "must be a string")
    if len(value) > MAX_DESCRIPTION:
        raise InvalidSettings("description", f"must be at most {MAX_DESCRIPTION} characters")
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise InvalidSettings("description", "must be plain text without control characters")
    return value


def _logo(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2000 or any(ord(c) <= 32 or ord(c) == 127 for c in value):
        raise InvalidSettings("logo_url", "must be an https:// URL or a path starting with /")
    parts = urlsplit(value)
    local = _is_local_path(value, parts.scheme, parts.netloc)
    if not local and (parts.scheme != "https" or not parts.netloc or parts.username is not None):
        raise InvalidSettings("logo_url", "must be an https:// URL or a path starting with /")
    return value


def _accent(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not HEX_COLOR.fullmatch(value):
        raise InvalidSettings("accent_color", "must be a colour written #rrggbb")
    return value.lower()


def _is_local_path(text: str, scheme: str, netloc: str) -> bool:
    # browsers read /\host as //host: another site, not a path
    return not scheme and not netloc and text.startswith("/") and text[1:2] not in ("/", "\\")


def _status(value: Any) -> EventStatus:
    try:
        return EventStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in EventStatus)
        raise InvalidSettings("status", f"must be one of {allowed}") from None


FIELDS = {
    "title",
    "rate_per_minute",
    "max_active",
    "token_ttl_seconds",
    "session_ttl_seconds",
    "abandon_after_seconds",
    "opens_at",
    "status",
    "target_url",
    "client_joins_per_minute",
    "client_max_waiting",
    "pow_difficulty",
    "queue_only_when_full",
    "description",
    "logo_url",
    "accent_color",
}

INTEGER_BOUNDS = {
    "rate_per_minute": (1, 1_000_000),
    "max_active": (0, 10_000_000),
    "token_ttl_seconds": (1, 86_400),
    "session_ttl_seconds": (1, 7 * 86_400),
    "abandon_after_seconds": (1, 86_400),
    "client_joins_per_minute": (0, 1_000_000),
    "client_max_waiting": (0, 1_000),
    "pow_difficulty": (0, MAX_DIFFICULTY),
}


def validate(current: EventSettings, changes: Mapping[str, Any]) -> EventSettings:
    """`current` with `changes` applied; raises InvalidSettings naming the first bad field."""
    unknown = sorted(set(changes) - FIELDS)
    if unknown:
        raise InvalidSettings(unknown[0], "is not a setting")
    checked: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "title":
            checked[field] = _text(field, value, MAX_TITLE)
        elif field in INTEGER_BOUNDS:
            checked[field] = _integer(field, value, *INTEGER_BOUNDS[field])
        elif field == "opens_at":
            checked[field] = _opens_at(value)
        elif field == "status":
            checked[field] = _status(value)
        elif field == "target_url":
            checked[field] = _target(value)
        elif field == "queue_only_when_full":
            checked[field] = _flag(field, value)
        elif field == "description":
            checked[field] = _description(value)
        elif field == "logo_url":
            checked[field] = _logo(value)
        elif field == "accent_color":
            checked[field] = _accent(value)
    return replace(current, **checked)
