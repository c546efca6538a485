"""Which event, if any, guards a request: path prefixes or the operator's own function."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from waiting_room.core.tickets import is_event_id

Scope = dict[str, Any]
Guard = Mapping[str, str] | Callable[[Scope], str | None]
EventOf = Callable[[Scope], str | None]

_SLASHES = re.compile(r"/{2,}")


def normalise(path: str) -> str:
    """`//checkout` reaches the same handler in many frameworks, so it must meet the same guard."""
    return _SLASHES.sub("/", path) or "/"


def by_prefix(rules: Mapping[str, str]) -> Callable[[str], str | None]:
    """A prefix covers the path itself and everything below it at a segment boundary; the longest wins."""
    prefixes: list[tuple[str, str]] = []
    for prefix, event in rules.items():
        if not prefix.startswith("/"):
            raise ValueError(f"guard prefix {prefix!r} must start with '/'")
        if not is_event_id(event):
            raise ValueError(f"guard {prefix!r}: {event!r} is not an event id")
        prefixes.append((normalise(prefix).rstrip("/"), event))
    prefixes.sort(key=lambda rule: len(rule[0]), reverse=True)

    def event_of(path: str) -> str | None:
        path = normalise(path)
        for prefix, event in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return event
        return None

    return event_of


def compile_guard(guard: Guard) -> EventOf:
    if isinstance(guard, Mapping):
        match = by_prefix(guard)
        return lambda scope: match(str(scope.get("path", "/")))
    if not callable(guard):
        raise TypeError("guard must be a mapping of path prefixes to events or a callable over the ASGI scope")

    def checked(scope: Scope) -> str | None:
        event = guard(scope)
        if event is not None and not is_event_id(event):
            raise ValueError(f"the guard named {event!r}, which is not an event id")
        return event

    return checked
