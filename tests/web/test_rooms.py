"""A room's ranks from the bus, its departures, and the messages a socket is due. No Redis, no sockets."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from waiting_room.core.ranks import LineChange
from waiting_room.core.states import EventStatus
from waiting_room.web.conn import Conn
from waiting_room.web.rooms import Room


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


def test_a_change_on_the_bus_moves_every_socket_and_a_gap_marks_them_for_a_read() -> None:
    room = room_with(3)
    conns = list(room.conns.values())
    for rank, conn in enumerate(conns):
        conn.tracker.observe(rank=rank + 10, score=100 + rank, seq=4)
    room.log.add(LineChange.of(5, popped=2, gone=["101"]))  # ahead of the third only
    for conn in conns:
        room.heard(conn)
    assert [c.tracker.position() for c in conns] == [9, 10, 10]
    assert room.stale == set()
    room.log.add(LineChange.of(7, popped=1))  # 6 never arrived
    for conn in conns:
        room.heard(conn)
    assert [c.tracker.position() for c in conns] == [8, 9, 9], "still applied: never below the truth"
    assert room.stale == set(room.conns)
    assert {c.ticket for c in room.take_stale(limit=2)} | {c.ticket for c in room.take_stale(limit=2)} == set(
        room.conns
    )
    assert room.take_stale(limit=2) == []


def test_departures_skip_tickets_whose_socket_came_back() -> None:
    room = room_with(2)
    first, second = list(room.conns.values())
    room.remove(first)
    room.remove(second)
    room.add(Conn(silent, first.ticket, "ev"))  # reconnected before the departure was written
    assert room.take_departed() == [second.ticket]
    assert room.take_departed() == []


def test_positions_are_pushed_only_when_they_change_and_never_up() -> None:
    room = room_with(1)
    conn: Any = next(iter(room.conns.values()))
    room.waiting, room.observed_rate, room.status = 50, 60.0, EventStatus.OPEN
    conn.tracker.observe(rank=9, score=50, seq=1)
    first = position_message(room, conn)
    assert first is not None and (first["position"], first["eta_seconds"]) == (10, 10)
    assert position_message(room, conn) is None  # unchanged: nothing to push
    room.served = 3
    room.log.add(LineChange.of(2, popped=3))
    room.log.catch_up(conn.tracker)
    moved = position_message(room, conn)
    assert moved is not None and moved["position"] == 7 and moved["served_total"] == 3
    conn.tracker.observe(rank=20, score=50, seq=2)  # a read that says worse cannot push it back up
    assert position_message(room, conn) is None


def test_a_socket_not_read_yet_hears_nothing() -> None:
    """Registered before its ticket is read (so no admission is missed): a fan-out meanwhile must not
    push it a place it does not know yet."""
    room = room_with(1)
    conn = next(iter(room.conns.values()))
    room.served = 5
    assert position_message(room, conn) is None
    conn.tracker.observe(rank=2, score=0, seq=0)
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


def test_a_socket_that_closes_is_noted_so_its_grace_starts_then() -> None:
    room = room_with(2)
    first = next(iter(room.conns.values()))
    room.remove(first)
    assert room.departed == [first.ticket]
    replaced = next(iter(room.conns.values()))
    room.add(Conn(silent, replaced.ticket, "ev"))
    room.remove(replaced)  # an old socket that a newer one replaced: its holder has not left
    assert room.departed == [first.ticket]


def test_a_lost_last_message_is_noticed_by_the_heartbeat_reads_of_the_sequence() -> None:
    room = room_with(2)
    behind, ahead = list(room.conns.values())
    behind.tracker.observe(rank=5, score=10, seq=3)
    ahead.tracker.observe(rank=6, score=11, seq=4)
    room.published(4)  # message 4 may still be on its way
    assert room.stale == set()
    room.published(4)  # a heartbeat later it has not come: lost
    assert room.stale == {behind.ticket}
    room.stale.clear()
    room.log.add(LineChange.of(5, popped=1))
    room.published(5)
    room.published(5)
    assert room.stale == set(), "heard: nothing to read"


def test_the_fan_out_brings_each_socket_up_to_the_log_and_writes_its_new_place() -> None:
    sent: list[dict[str, Any]] = []

    async def record(message: MutableMapping[str, Any]) -> None:
        sent.append(json.loads(message["text"]))

    room = Room("ev")
    ahead, behind = Conn(record, "ev." + "a" * 24, "ev"), Conn(record, "ev." + "b" * 24, "ev")
    room.add(ahead)
    room.add(behind)
    ahead.tracker.observe(rank=4, score=10, seq=1)
    behind.tracker.observe(rank=8, score=20, seq=1)
    room.log.add(LineChange.of(2, popped=2))
    room.fan_out()
    assert [m["position"] for m in sent] == [3, 7] and room.stale == set()
    room.log.add(LineChange.of(4, popped=1))  # 3 never arrived
    room.fan_out()
    assert [m["position"] for m in sent[2:]] == [2, 6], "still applied: never below the truth"
    assert room.stale == {ahead.ticket, behind.ticket}
