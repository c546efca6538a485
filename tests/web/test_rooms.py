"""A room's rotation of rank re-reads, and the messages a socket is due. No Redis, no sockets."""

from __future__ import annotations

import json
import math
from collections.abc import MutableMapping
from typing import Any

import pytest

from waiting_room.core.states import EventStatus
from waiting_room.web.conn import Conn
from waiting_room.web.rooms import REFRESH_SECONDS, Room


async def silent(message: MutableMapping[str, Any]) -> None:
    """An ASGI send to nowhere."""


def position_message(room: Room, conn: Conn) -> dict[str, Any] | None:
    text = room.position_text(conn)
    return None if text is None else dict(json.loads(text))


def room_with(n: int) -> Room:
    room = Room("ev")
    for i in range(n):
        room.add(Conn(silent, f"ev.{i:024d}", "ev"))
    return room


@pytest.mark.parametrize(("sockets", "seconds"), [(1, 0.5), (7, 0.1), (1000, 0.5), (5000, 0.5), (333, 2.0)])
def test_every_socket_is_read_within_the_refresh_period(sockets: int, seconds: float) -> None:
    room = room_with(sockets)
    seen: set[str] = set()
    for _ in range(math.ceil(REFRESH_SECONDS / seconds)):  # the rounds of one period (one more if not whole)
        seen.update(c.ticket for c in room.refresh_slice(seconds))
    assert seen == set(room.conns)


def test_a_late_round_reads_a_bigger_slice() -> None:
    room = room_with(1000)
    assert len(room.refresh_slice(0.5)) == 100
    assert len(room.refresh_slice(1.0)) == 200  # came round a tick late: catches up


def test_sockets_that_left_drop_out_of_the_rotation() -> None:
    room = room_with(10)
    for conn in list(room.conns.values())[:5]:
        room.remove(conn)
    picked = room.refresh_slice(REFRESH_SECONDS)
    assert {c.ticket for c in picked} == set(room.conns) and len(room.rotation) == 5


def test_a_socket_that_reconnects_again_and_again_is_in_the_rotation_once() -> None:
    room = room_with(1)
    ticket = next(iter(room.conns))
    for _ in range(100):
        older = room.add(Conn(silent, ticket, "ev"))
        assert older is not None
        room.remove(older)
    assert list(room.rotation) == [ticket]


def test_positions_are_pushed_only_when_they_change_and_never_up() -> None:
    room = room_with(1)
    conn: Any = next(iter(room.conns.values()))
    room.waiting, room.observed_rate, room.status = 50, 60.0, EventStatus.OPEN
    conn.tracker.observe(rank=9, served=0)
    first = position_message(room, conn)
    assert first is not None and (first["position"], first["eta_seconds"]) == (10, 10)
    assert position_message(room, conn) is None  # unchanged: nothing to push
    room.served = 3
    moved = position_message(room, conn)
    assert moved is not None and moved["position"] == 7 and moved["served_total"] == 3
    conn.tracker.observe(rank=20, served=0)  # a read that says worse cannot push it back up
    assert position_message(room, conn) is None


def test_a_socket_not_read_yet_hears_nothing() -> None:
    """Registered before its ticket is read (so no admission is missed): a fan-out meanwhile must not
    push it a place it does not know yet."""
    room = room_with(1)
    conn = next(iter(room.conns.values()))
    room.served = 5
    assert position_message(room, conn) is None
    conn.tracker.observe(rank=2, served=5)
    message = position_message(room, conn)
    assert message is not None and message["position"] == 3


def test_a_pre_queue_socket_hears_once_that_it_has_no_place_yet() -> None:
    room = room_with(1)
    conn = next(iter(room.conns.values()))
    room.unranked.add(conn.ticket)
    message = position_message(room, conn)
    assert message is not None and message["position"] is None and message["eta_seconds"] is None
    assert position_message(room, conn) is None


def test_pre_queue_sockets_are_ranked_in_batches_once_the_line_opens() -> None:
    room = room_with(5)
    room.opens_at = 1000.0
    room.unranked.update(room.conns)
    assert room.due_at_opening(now=999.0, limit=2) == [], "nobody is ranked before the opening"
    first = room.due_at_opening(now=1000.0, limit=2)
    second = room.due_at_opening(now=1000.5, limit=10)
    assert len(first) == 2 and len(second) == 3
    assert {c.ticket for c in first + second} == set(room.conns)
    assert room.due_at_opening(now=1001.0, limit=10) == []
    gone = next(iter(room.conns.values()))
    room.unranked.add(gone.ticket)
    room.remove(gone)
    assert room.due_at_opening(now=1002.0, limit=10) == [], "a socket that left is not read"


@pytest.mark.parametrize(("abandon_after", "period"), [(120, 5.0), (20, 5.0), (8, 2.0), (2, 0.5), (0.5, 0.25)])
def test_a_short_grace_reads_sockets_more_often(abandon_after: float, period: float) -> None:
    """A connected holder is marked seen several times within abandon_after, so it is never taken for gone."""
    room = room_with(100)
    room.abandon_after = abandon_after
    assert room.refresh_seconds == period
    assert len(room.refresh_slice(0.1)) == math.ceil(100 * 0.1 / period)


def test_a_socket_that_closes_is_noted_so_its_grace_starts_then() -> None:
    room = room_with(2)
    first = next(iter(room.conns.values()))
    room.remove(first)
    assert room.departed == [first.ticket]
    replaced = next(iter(room.conns.values()))
    room.add(Conn(silent, replaced.ticket, "ev"))
    room.remove(replaced)  # an old socket that a newer one replaced: its holder has not left
    assert room.departed == [first.ticket]
