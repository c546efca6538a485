"""The web process's own gauges, read back from the exposition text."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest

from waiting_room.store.events import Events
from waiting_room.web.metrics import Metrics

pytestmark = pytest.mark.usefixtures("deadline")


async def tasks_reported(metrics: Metrics, events: Events) -> int:
    text = bytes((await metrics.render(events)).body).decode()
    match = re.search(r"^wr_tasks (\S+)$", text, re.MULTILINE)
    assert match is not None, text
    return int(float(match.group(1)))


async def test_wr_tasks_counts_the_tasks_alive_in_the_process(events: Events) -> None:
    hub: Any = SimpleNamespace(rooms={}, stats=SimpleNamespace(fanout_lag=deque()))
    metrics = Metrics(hub)
    before = await tasks_reported(metrics, events)
    release = asyncio.Event()
    parked = [asyncio.create_task(release.wait()) for _ in range(7)]
    assert await tasks_reported(metrics, events) == before + 7
    release.set()
    await asyncio.gather(*parked)
    assert await tasks_reported(metrics, events) == before
