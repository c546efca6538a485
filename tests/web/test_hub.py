"""The hub alone: rooms and fan-out over the in-memory bus and a fake loader. No Redis, no network."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.hub import FakeLoader, Harness
from support.waiting import until

from waiting_room.core import messages
from waiting_room.core.standing import Standing
from waiting_room.core.states import CloseCode, EventStatus, TicketState
from waiting_room.core.tickets import Admission, new_ticket
from waiting_room.core.tokens import Signer
from waiting_room.store.bus import MemoryBroker, MemoryBus
from waiting_room.web.hub import Hub

pytestmark = pytest.mark.usefixtures("deadline")

EVENT = "demo"
ISSUER = "http://waiting-room.test"
TICK_SECONDS = 0.05


class World:
    """Hubs sharing one in-memory bus and one fake store, as web processes share Redis."""

    def __init__(self) -> None:
        self.loader = FakeLoader()
        self.broker = MemoryBroker()
        self.signer = Signer(Ed25519PrivateKey.generate(), ISSUER)
        self.buses: list[MemoryBus] = []
        self.harness = Harness(self._hub)
        self.event = self.loader.event(EVENT, status="paused")

    def _hub(self) -> Hub:
        bus = self.broker.bus()
        self.buses.append(bus)
        return Hub(self.loader, bus, self.signer, TICK_SECONDS)

    def waiting(self, n: int) -> list[str]:
        """`n` tickets waiting in line order (order scores 1..n)."""
        tickets = [new_ticket(EVENT) for _ in range(n)]
        for i, ticket in enumerate(tickets):
            self.event.tickets[ticket] = Standing(TicketState.WAITING, position=i + 1)
            self.event.scores[ticket] = i + 1
        self.event.waiting = n
        return tickets

    def advance(
        self,
        admitted: list[str] = (),  # type: ignore[assignment]
        removed: list[str] = (),  # type: ignore[assignment]
        served: int = 0,
        popped: int | None = None,
    ) -> messages.Advance:
        """The next advance: `admitted` popped from the head, `removed` gone from where they were."""
        self.event.seq += 1
        return messages.Advance(
            event=EVENT,
            served=served,
            waiting=self.event.waiting,
            status=EventStatus.OPEN,
            observed_rate=60.0,
            admitted=tuple(messages.AdmittedTicket(t, admission(self.loader.now_ms)) for t in admitted),
            removed=tuple(removed),
            expired=(),
            at_ms=self.loader.now_ms,
            seq=self.event.seq,
            popped=len(admitted) if popped is None else popped,
            gone=tuple(self.event.scores[t] for t in removed),
        )


def admission(now_ms: int) -> Admission:
    return Admission(secrets.token_urlsafe(8), now_ms, now_ms + 300_000)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    yield w
    await w.harness.close()


async def test_a_socket_starts_at_its_position_and_moves_with_each_advance_never_up(world: World) -> None:
    tickets = world.waiting(5)
    hub = await world.harness.hub()
    sockets = [(await world.harness.connect(hub, t))[0] for t in tickets]
    await until(lambda: all(s.positions() for s in sockets), "a position on every socket")
    assert [s.positions() for s in sockets] == [[1], [2], [3], [4], [5]]

    world.event.waiting = 3
    world.broker.publish(world.advance(admitted=tickets[:2], served=2))
    await until(lambda: all(s.of("admitted") for s in sockets[:2]), "the two at the head admitted")
    await until(lambda: all(len(s.positions()) == 2 for s in sockets[2:]), "new positions for the rest")
    assert [s.positions()[-1] for s in sockets[2:]] == [1, 2, 3]
    for ticket, socket in zip(tickets[:2], sockets[:2], strict=True):
        claims = world.signer.verify(socket.of("admitted")[0]["token"])
        assert (claims.ticket, claims.event) == (ticket, EVENT)
        assert socket.of("admitted")[0]["redirect"] == f"/order/{EVENT}"

    # one removed from the middle: those behind it move up by one, those ahead stay
    world.broker.publish(world.advance(removed=[tickets[3]], served=2))
    await until(lambda: sockets[3].close_code is not None, "the removed ticket's socket closed")
    assert sockets[3].close_code == CloseCode.NOT_WAITING
    await until(lambda: sockets[4].positions()[-1] == 2, "the one behind moved up")
    assert sockets[2].positions()[-1] == 1
    for socket in sockets[2:]:
        assert socket.positions() == sorted(socket.positions(), reverse=True)


async def test_a_missed_advance_is_read_again_in_one_batch_and_positions_never_go_up(world: World) -> None:
    tickets = world.waiting(6)
    hub = await world.harness.hub()
    sockets = [(await world.harness.connect(hub, t))[0] for t in tickets]
    await until(lambda: all(s.positions() for s in sockets), "a position on every socket")
    reads = len(world.loader.loads)
    world.advance(admitted=tickets[:1], served=1)  # published, but lost on the way to this process
    del world.event.tickets[tickets[0]]
    for i, ticket in enumerate(tickets[1:]):
        world.event.tickets[ticket] = Standing(TicketState.WAITING, position=i + 1)
    world.broker.publish(world.advance(popped=0, served=1))  # the next one shows the gap
    await until(lambda: sockets[1].positions()[-1] == 1, "the missed change read again")
    assert [s.positions()[-1] for s in sockets[1:]] == [1, 2, 3, 4, 5]
    assert len(world.loader.loads) == reads + 1, "one batched read for every socket that missed it"
    for socket in sockets:
        assert socket.positions() == sorted(socket.positions(), reverse=True)


async def test_tickets_the_store_does_not_know_or_that_are_done_are_closed_and_admitted_ones_told(
    world: World,
) -> None:
    [waiting] = world.waiting(1)
    done, admitted = new_ticket(EVENT), new_ticket(EVENT)
    world.event.tickets[done] = Standing(TicketState.REDEEMED)
    world.event.tickets[admitted] = Standing(TicketState.ADMITTED, admission=admission(world.loader.now_ms))
    hub = await world.harness.hub()
    unknown_socket, _ = await world.harness.connect(hub, new_ticket(EVENT))
    done_socket, _ = await world.harness.connect(hub, done)
    admitted_socket, _ = await world.harness.connect(hub, admitted)
    waiting_socket, _ = await world.harness.connect(hub, waiting)
    await until(lambda: unknown_socket.close_code is not None and done_socket.close_code is not None, "closes")
    assert (unknown_socket.close_code, done_socket.close_code) == (CloseCode.UNKNOWN_TICKET, CloseCode.NOT_WAITING)
    await until(lambda: bool(admitted_socket.of("admitted")), "admitted at connect")
    assert admitted_socket.of("position") == [] and admitted_socket.close_code is None
    await until(lambda: bool(waiting_socket.positions()), "the waiting one's position")


async def test_an_admission_heard_before_the_rooms_settings_waits_for_them_and_names_the_target(
    world: World,
) -> None:
    [ticket] = world.waiting(1)
    world.event.settings = replace(world.event.settings, target_url="https://shop.example/checkout")
    hub = await world.harness.hub()
    world.loader.gate = asyncio.Event()  # the connect's read is slow to come back
    connecting = asyncio.create_task(world.harness.connect(hub, ticket))
    await until(lambda: EVENT in hub.rooms, "the socket registered")
    world.event.tickets[ticket] = Standing(TicketState.ADMITTED, admission=admission(world.loader.now_ms))
    world.broker.publish(world.advance(admitted=[ticket], served=1))  # heard before the read's reply
    await asyncio.sleep(0.05)
    world.loader.gate.set()
    socket, _ = await connecting
    await until(lambda: bool(socket.of("admitted")), "admitted")
    await asyncio.sleep(0.05)
    assert [m["redirect"] for m in socket.of("admitted")] == ["https://shop.example/checkout"]


async def test_a_newer_socket_replaces_the_older_in_this_process_and_in_others(world: World) -> None:
    [ticket] = world.waiting(1)
    one, two = await world.harness.hub(), await world.harness.hub()
    first, _ = await world.harness.connect(one, ticket)
    second, _ = await world.harness.connect(one, ticket)
    await until(lambda: first.close_code is not None, "the first socket replaced")
    assert first.close_code == CloseCode.REPLACED
    third, _ = await world.harness.connect(two, ticket)
    await until(lambda: second.close_code is not None, "the other process's socket replaced by the claim")
    assert second.close_code == CloseCode.REPLACED
    await until(lambda: bool(third.positions()), "a position for the newest")
    assert third.close_code is None and third.positions() == [1]


async def test_notices_and_state_changes_reach_every_socket_and_the_latest_notice_greets_new_ones(
    world: World,
) -> None:
    tickets = world.waiting(3)
    hubs = [await world.harness.hub(), await world.harness.hub()]
    sockets = [(await world.harness.connect(hubs[i % 2], t))[0] for i, t in enumerate(tickets)]
    await until(lambda: all(s.positions() for s in sockets), "a position on every socket")
    notice = messages.Notice(EVENT, "n1", "info", "Doors open soon", 1.0)
    world.broker.publish(notice)
    world.broker.publish(messages.Notice(None, "n2", "warning", "For everyone", 2.0))
    world.broker.publish(messages.Notice("another-event", "n3", "info", "Not for these", 3.0))
    world.broker.publish(messages.StateChange(EVENT, EventStatus.OPEN))
    await until(lambda: all(len(s.of("notice")) == 2 and s.of("state") for s in sockets), "notices and state")
    for socket in sockets:
        assert [n["id"] for n in socket.of("notice")] == ["n1", "n2"]
        assert socket.of("notice")[0] == notice.client_message()
        assert socket.of("state") == [messages.state(EventStatus.OPEN)]

    world.event.notice = notice.client_message()
    [late] = world.waiting(1)
    late_socket, _ = await world.harness.connect(hubs[0], late)
    await until(lambda: bool(late_socket.of("notice")), "the latest notice at connect")
    assert late_socket.of("notice") == [notice.client_message()]


async def test_rooms_subscribe_their_event_while_they_have_sockets(world: World) -> None:
    [ticket] = world.waiting(1)
    hub = await world.harness.hub()
    bus = world.buses[0]
    assert bus.events == set()
    _, conn = await world.harness.connect(hub, ticket)
    assert bus.events == {EVENT}
    hub.detach(conn)
    await until(lambda: EVENT not in hub.rooms, "the empty room to go")
    assert bus.events == set()
    assert world.loader.departed == [ticket], "the closed socket's holder departed as it left"
    assert EVENT in world.loader.forgotten


async def test_after_the_bus_reconnects_every_socket_is_read_again(world: World) -> None:
    tickets = world.waiting(3)
    hub = await world.harness.hub()
    sockets = [(await world.harness.connect(hub, t))[0] for t in tickets]
    await until(lambda: all(s.positions() for s in sockets), "a position on every socket")
    # while away, the head was admitted and the message lost; the resync reads it
    world.event.tickets[tickets[0]] = Standing(TicketState.ADMITTED, admission=admission(world.loader.now_ms))
    for i, ticket in enumerate(tickets[1:]):
        world.event.tickets[ticket] = Standing(TicketState.WAITING, position=i + 1)
    world.event.served = 1
    resyncs = sum(1 for load in world.loader.loads if set(load[1]) == set(tickets))
    await world.buses[0].reconnect()
    assert sum(1 for load in world.loader.loads if set(load[1]) == set(tickets)) == resyncs + 1
    await until(lambda: bool(sockets[0].of("admitted")), "the admission that was missed")
    await until(lambda: sockets[1].positions()[-1] == 1, "the next one moved up")


async def test_an_unreachable_store_fails_the_connect_and_the_hub_goes_on(world: World) -> None:
    tickets = world.waiting(2)
    hub = await world.harness.hub()
    world.loader.down = True
    with pytest.raises(ConnectionError):
        await world.harness.connect(hub, tickets[0])
    world.loader.down = False
    socket, _ = await world.harness.connect(hub, tickets[1])
    await until(lambda: bool(socket.positions()), "a position once the store is back")


async def test_the_hub_keeps_redis_time_not_its_own(world: World) -> None:
    world.loader.now_ms -= 3_600_000  # this host's clock is an hour fast
    [ticket] = world.waiting(1)
    hub = await world.harness.hub()
    await world.harness.connect(hub, ticket)
    assert abs(hub.now() - world.loader.now_ms / 1000) < 60


def settled(sockets: list[Any]) -> bool:
    """At most one socket open, and every socket either closed or told its position."""
    return sum(s.close_code is None for s in sockets) <= 1 and all(s.positions() or s.close_code for s in sockets)


async def test_sockets_opened_at_once_for_one_ticket_leave_exactly_the_newest(world: World) -> None:
    """Claims cross on the bus: the older socket's claim, heard after the newer socket opened, must not
    close it. In one process and across several, with the claims arriving in either order."""
    for hubs_count, sockets_count in ((1, 2), (2, 2), (3, 9)):
        [ticket] = world.waiting(1)
        hubs = [await world.harness.hub() for _ in range(hubs_count)]
        opened = await asyncio.gather(
            *(world.harness.connect(hubs[i % hubs_count], ticket) for i in range(sockets_count))
        )
        sockets = [socket for socket, _ in opened]
        await until(partial(settled, sockets), "the replaced sockets to close")
        await asyncio.sleep(0.05)  # any claim still in flight would land by now
        alive = [s for s in sockets if s.close_code is None]
        assert len(alive) == 1, [s.close_code for s in sockets]
        assert {s.close_code for s in sockets if s is not alive[0]} <= {CloseCode.REPLACED}


async def test_a_later_socket_in_one_process_wins_however_the_store_clock_reads(world: World) -> None:
    """A socket reconnecting in the same process, read in the same millisecond of the store's clock, or
    after that clock stepped back (a failover to a replica whose clock is behind), while the older
    socket's claim is still on its way back over the bus: the later socket is the newer one."""
    hub = await world.harness.hub()
    held: list[messages.BusMessage] = []
    deliver = world.broker.publish
    world.broker.publish = held.append  # type: ignore[method-assign]  # the bus is slow: held until released

    def release() -> None:
        for message in held:
            deliver(message)
        held.clear()

    for step_ms in [0] * 10 + [-5] * 10:
        [ticket] = world.waiting(1)
        first, _ = await world.harness.connect(hub, ticket)
        world.loader.now_ms += step_ms - 1  # the next read is in the same millisecond, or earlier
        connecting = asyncio.create_task(world.harness.connect(hub, ticket))
        await until(lambda: first.close_code is not None, "the older socket replaced in its process")  # noqa: B023
        release()  # the older socket's claim comes back now
        second, _ = await connecting
        release()
        await until(lambda: bool(second.positions()) or second.close_code is not None, "the newer one read")  # noqa: B023
        await asyncio.sleep(0.05)  # any claim still in flight would land by now
        assert (first.close_code, second.close_code) == (CloseCode.REPLACED, None), step_ms
