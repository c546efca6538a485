"""Driving hubs in-process: sockets that record what they get, and a fake loader."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from waiting_room.core.event_settings import EventSettings
from waiting_room.core.standing import EventSnapshot, Heartbeat, Standing
from waiting_room.web.conn import Conn
from waiting_room.web.hub import Hub


class RecordingSocket:
    """Stands in for the network: an ASGI `send` that keeps what the hub sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.close_code: int | None = None

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.sent.append(json.loads(message["text"]))
        elif message["type"] == "websocket.close":
            self.close_code = message["code"]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == kind]

    def positions(self) -> list[int | None]:
        return [m["position"] for m in self.of("position")]


@dataclass
class FakeEvent:
    settings: EventSettings
    served: int = 0
    waiting: int = 0
    observed_rate: float = 0.0
    tickets: dict[str, Standing] = field(default_factory=dict)
    notice: dict[str, Any] | None = None
    seq: int = 0  # sequence number of the last advance
    scores: dict[str, int] = field(default_factory=dict)  # order scores of waiting tickets


class FakeLoader:
    """The store as the hub sees it, in memory; `down` makes it fail as an unreachable store does."""

    errors: tuple[type[BaseException], ...] = (ConnectionError,)

    def __init__(self) -> None:
        self.events: dict[str, FakeEvent] = {}
        self.now_ms = int(time.time() * 1000)
        self.down = False
        self.loads: list[tuple[str, list[str], bool]] = []
        self.held: dict[str, str] = {}  # ticket -> process holding its socket
        self.departed: list[str] = []  # tickets whose socket closed, in order
        self.beats: list[tuple[str, dict[str, int]]] = []
        self.forgotten: list[str] = []
        self.gate: asyncio.Event | None = None  # while set and not yet open, reads wait (a slow reply)

    def event(self, event: str, **settings: Any) -> FakeEvent:
        found = self.events[event] = FakeEvent(replace(EventSettings.defaults(event), **settings))
        return found

    async def load(
        self, event: str, tickets: Sequence[str], *, arriving: bool = False, process: str = "", sockets: int = 0
    ) -> EventSnapshot:
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionError("the store is down")
        self.now_ms += 1  # the store's clock moves on between reads
        self.loads.append((event, list(tickets), arriving))
        if arriving:
            self.held.update(dict.fromkeys(tickets, process))
        found = self.events.get(event)
        if found is None:
            return EventSnapshot(None, 0, 0, 0.0, self.now_ms, dict.fromkeys(tickets))
        return EventSnapshot(
            settings=found.settings,
            served=found.served,
            waiting=found.waiting,
            observed_rate=found.observed_rate,
            now_ms=self.now_ms,
            tickets={t: found.tickets.get(t) for t in tickets},
            notice=found.notice if arriving else None,
            seq=found.seq,
            scores={t: found.scores[t] for t in tickets if t in found.scores},
        )

    async def beat(self, process: str, sockets: Mapping[str, int]) -> dict[str, Heartbeat]:
        if self.down:
            raise ConnectionError("the store is down")
        self.beats.append((process, dict(sockets)))
        return {e: Heartbeat(False, self.events[e].settings, self.events[e].seq) for e in sockets if e in self.events}

    async def hold(self, event: str, process: str, sockets: int, tickets: Sequence[str]) -> None:
        self.held.update(dict.fromkeys(tickets, process))

    async def depart(self, event: str, process: str, tickets: Sequence[str]) -> None:
        if self.down:
            raise ConnectionError("the store is down")
        for ticket in tickets:
            if self.held.get(ticket) == process:
                del self.held[ticket]
                self.departed.append(ticket)

    async def forget(self, process: str, events: Iterable[str]) -> None:
        self.forgotten.extend(events)


class Harness:
    """Hubs, each as one web process would have it."""

    def __init__(self, make_hub: Callable[[], Hub]) -> None:
        self.make_hub = make_hub
        self.hubs: list[Hub] = []

    async def hub(self) -> Hub:
        hub = self.make_hub()
        await hub.start()
        assert hub.subscribed.is_set()
        self.hubs.append(hub)
        return hub

    async def connect(self, hub: Hub, ticket: str) -> tuple[RecordingSocket, Conn]:
        socket = RecordingSocket()
        conn = Conn(socket.send, ticket, ticket.partition(".")[0])
        await hub.attach(conn)
        return socket, conn

    async def close(self) -> None:
        for hub in self.hubs:
            await hub.stop()
