"""A room's ranks from the bus, its departures, and the messages a socket is due. No Redis, no sockets."""

from __future__ import annotations

from typing import Any

from waiting_room.core.ranks import LineChange
from waiting_room.core.states import CloseCode, EventStatus
from waiting_room.web.rooms import MAILBOX_LIMIT, Conn, Room


class Silent:
    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


def room_with(n: int) -> Room:
    room = Room("ev")
    for i in range(n):
        room.add(Conn(Silent(), f"ev.{i:024d}", "ev"))
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
    room.add(Conn(Silent(), first.ticket, "ev"))  # reconnected before the departure was written
    assert room.take_departed() == [second.ticket]
    assert room.take_departed() == []


def test_positions_are_pushed_only_when_they_change_and_never_up() -> None:
    room = room_with(1)
    conn: Any = next(iter(room.conns.values()))
    room.waiting, room.observed_rate, room.status = 50, 60.0, EventStatus.OPEN
    conn.tracker.observe(rank=9, score=50, seq=1)
    first = room.position_message(conn)
    assert first is not None and (first["position"], first["eta_seconds"]) == (10, 10)
    assert room.position_message(conn) is None  # unchanged: nothing to push
    room.served = 3
    room.log.add(LineChange.of(2, popped=3))
    room.heard(conn)
    moved = room.position_message(conn)
    assert moved is not None and moved["position"] == 7 and moved["served_total"] == 3
    conn.tracker.observe(rank=20, score=50, seq=2)  # a read that says worse cannot push it back up
    assert room.position_message(conn) is None


def test_a_pre_queue_socket_hears_once_that_it_has_no_place_yet() -> None:
    room = room_with(1)
    conn = next(iter(room.conns.values()))
    message = room.position_message(conn)
    assert message is not None and message["position"] is None and message["eta_seconds"] is None
    assert room.position_message(conn) is None


def test_a_socket_that_stops_reading_is_dropped_not_buffered_forever() -> None:
    conn = Conn(Silent(), "ev." + "a" * 24, "ev")
    for i in range(MAILBOX_LIMIT):
        conn.send({"type": "notice", "id": str(i)})
    assert conn.close_code is None
    conn.send({"type": "notice", "id": "one too many"})
    assert conn.close_code == CloseCode.GOING_AWAY


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
    room.add(Conn(Silent(), replaced.ticket, "ev"))
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
