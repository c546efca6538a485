"""Polling with a deadline: for liveness only (the deadline is generous, never a speed requirement)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def poll(fn: Callable[[], T | None], what: str | Callable[[], str], within: float = 15.0, interval: float = 0.05) -> T:
    """Call `fn` until it returns something truthy; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


async def apoll(
    fn: Callable[[], Awaitable[T]], what: str | Callable[[], str], within: float = 15.0, interval: float = 0.05
) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:.0f} s waiting for {what() if callable(what) else what}")
        await asyncio.sleep(interval)


async def until(predicate: Callable[[], bool], what: str | Callable[[], str], within: float = 15.0) -> None:
    async def check() -> bool:
        return predicate()

    await apoll(check, what, within, 0.02)
