"""The fan-out's writes: straight into each socket while it takes them, a drain task only for one that is
backed up. Each socket is an ASGI `send` with uvicorn's flow control (a send waits while the transport is
paused, and fails once the connection is lost). No Redis, no timing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from waiting_room.core.ranks import LineChange
from waiting_room.core.states import CloseCode, EventStatus
from waiting_room.web import conn as conn_module
from waiting_room.web.conn import BACKLOG_LIMIT, Conn
from waiting_room.web.rooms import Room


class Transport:
    """The server side of one socket as uvicorn's websockets-sansio protocol behaves."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = False
        self.sent: list[dict[str, Any]] = []
        self.close_code: int | None = None

    async def send(self, message: MutableMapping[str, Any]) -> None:
        await self.writable.wait()  # uvicorn: paused by pause_writing(), resumed by resume_writing()
        if self.lost:
            raise OSError("client disconnected")  # uvicorn's ClientDisconnected
        if message["type"] == "websocket.send":
            self.sent.append(json.loads(message["text"]))
        elif message["type"] == "websocket.close":
            self.close_code = message["code"]

    def lose(self) -> None:
        self.lost = True
        self.writable.set()  # as uvicorn does on connection_lost

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == kind]

    def positions(self) -> list[int]:
        return [m["position"] for m in self.of("position")]


async def open_socket(room: Room, i: int, rank: int) -> tuple[Transport, Conn]:
    transport = Transport()
    conn = Conn(transport.send, f"ev.{i:024d}", "ev")
    conn.tracker.observe(rank=rank, score=rank, seq=0)
    room.add(conn)
    return transport, conn


async def room_of(n: int) -> tuple[Room, list[tuple[Transport, Conn]]]:
    room = Room("ev")
    room.waiting, room.observed_rate, room.status = n + 100, 60.0, EventStatus.OPEN
    return room, [await open_socket(room, i, rank=i + 50) for i in range(n)]


def tick(room: Room) -> None:
    """One advance: everybody moves up one place, and the hub's fan-out runs (synchronously)."""
    room.served += 1
    room.log.add(LineChange.of(room.served, popped=1))
    room.fan_out()


async def test_writable_sockets_get_every_tick_at_once_with_no_task_per_socket() -> None:
    room, sockets = await room_of(100)
    tasks = len(asyncio.all_tasks())
    for served in range(1, 6):
        tick(room)
        # nothing awaited since the tick: the positions are out already
        assert all(t.sent[-1]["served_total"] == served for t, _ in sockets)
    assert len(asyncio.all_tasks()) == tasks
    assert [t.positions() for t, _ in sockets] == [[51 + i - s for s in range(1, 6)] for i in range(100)]


async def test_a_stalled_socket_delays_nobody_and_later_gets_the_latest_position() -> None:
    room, sockets = await room_of(5)
    stalled, stalled_conn = sockets[2]
    stalled.writable.clear()  # the peer stopped reading: the transport is paused and never drains here
    for served in range(1, 21):
        tick(room)
        for transport, _ in sockets:
            if transport is not stalled:
                assert transport.sent[-1]["served_total"] == served
        await asyncio.sleep(0)  # the stalled socket's drain task runs, and waits
    assert stalled.sent == []
    assert [len(t.sent) for t, _ in sockets if t is not stalled] == [20] * 4
    stalled.writable.set()  # it drains at last
    await stalled_conn.flushed()
    # the write that found it paused, then the latest position: not the 18 in between
    assert [m["served_total"] for m in stalled.sent] == [1, 20]
    assert stalled.positions()[-1] == stalled_conn.tracker.position()
    tick(room)  # writable again: back on the direct path
    assert stalled.sent[-1]["served_total"] == 21 and stalled_conn.drain is None


async def test_a_socket_closed_in_the_middle_of_a_fanout_stops_nobody() -> None:
    room, sockets = await room_of(6)
    lost_transport, lost = sockets[3]
    replaced_transport, replaced = sockets[4]
    tick(room)

    original = sockets[1][0].send

    async def send_then_lose_others(message: MutableMapping[str, Any]) -> None:
        await original(message)
        lost_transport.lose()  # this peer goes away while the fan-out is between sockets
        replaced.close(CloseCode.REPLACED)  # and the hub closes this one (a newer socket elsewhere)

    sockets[1][1].transmit = send_then_lose_others
    tick(room)
    tick(room)
    assert lost.closed and lost_transport.sent[-1]["served_total"] == 1
    assert replaced_transport.close_code == CloseCode.REPLACED and replaced.closed
    assert replaced_transport.sent[-1]["served_total"] == 1, "nothing after its close"
    for i in (0, 1, 2, 5):
        assert sockets[i][0].sent[-1]["served_total"] == 3
    assert all(conn.drain is None for _, conn in sockets)


async def test_must_send_messages_are_never_lost_behind_positions() -> None:
    room, sockets = await room_of(2)
    transport, conn = sockets[0]
    transport.writable.clear()
    tick(room)
    conn.send({"type": "state", "state": "paused", "message": "The line is paused for now."})
    tick(room)
    tick(room)
    conn.send({"type": "notice", "id": "n1", "level": "info", "text": "hello", "at": 1.0})
    tick(room)
    conn.admitted = True
    conn.send({"type": "admitted", "token": "t", "expires_at": 2.0, "redirect": "/order/ev"})
    tick(room)  # admitted: no more positions
    await asyncio.sleep(0)
    assert transport.sent == []
    transport.writable.set()
    await conn.flushed()
    kinds = [m["type"] for m in transport.sent]
    assert kinds == ["position", "state", "notice", "admitted"]
    assert transport.sent[0]["served_total"] == 1
    assert sockets[1][0].positions() == [52 - s for s in range(1, 6)]


async def test_a_socket_that_never_drains_is_abandoned_once_its_backlog_is_full() -> None:
    room, sockets = await room_of(2)
    transport, conn = sockets[0]
    endpoint = asyncio.create_task(asyncio.Event().wait())  # stands in for the socket's endpoint
    conn.endpoint = endpoint
    transport.writable.clear()
    tick(room)
    for i in range(BACKLOG_LIMIT):
        conn.send({"type": "notice", "id": str(i), "level": "info", "text": "x", "at": 1.0})
    assert not conn.abandoned
    conn.send({"type": "notice", "id": "one too many", "level": "info", "text": "x", "at": 1.0})
    assert conn.abandoned and conn.close_code == CloseCode.GOING_AWAY
    await asyncio.gather(endpoint, return_exceptions=True)
    assert endpoint.cancelled(), "its endpoint stops, so the server drops the connection"
    assert conn.drain is None
    transport.writable.set()
    tick(room)
    await asyncio.sleep(0)
    assert transport.sent == [], "nothing more is written to it"
    assert sockets[1][0].positions() == [51, 50]


async def test_a_socket_paused_too_long_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    room, sockets = await room_of(2)
    transport, conn = sockets[0]
    transport.writable.clear()
    tick(room)
    tick(room)
    assert not conn.abandoned and conn.drain is not None
    monkeypatch.setattr(conn_module, "STALL_SECONDS", -1.0)  # any stall is now too long
    tick(room)
    assert conn.abandoned
    assert conn.drain is None
    assert transport.sent == [] and sockets[1][0].positions() == [51, 50, 49]


async def test_a_close_waits_for_what_is_queued_before_it() -> None:
    room, sockets = await room_of(1)
    transport, conn = sockets[0]
    transport.writable.clear()
    tick(room)
    conn.send({"type": "notice", "id": "n", "level": "info", "text": "bye", "at": 1.0})
    conn.close(CloseCode.NOT_WAITING)
    tick(room)
    transport.writable.set()
    await conn.flushed()
    assert [m["type"] for m in transport.sent] == ["position", "notice"]
    assert transport.close_code == CloseCode.NOT_WAITING
