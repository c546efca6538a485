"""Ticket operations over Redis: join, status, redeem, release.

Each is one round trip: a Lua script or a MULTI pipeline whose reads are
consistent with each other (a rank and the served_total it goes with).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from waiting_room.core import eta, ids
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.proof import Proof
from waiting_room.core.sessions import new_session, parse_session
from waiting_room.core.standing import redis_ms, standing
from waiting_room.core.states import EventStatus, TicketState
from waiting_room.core.tickets import SHUFFLE_RANGE, TicketRecord, event_of, new_ticket
from waiting_room.core.tokens import Claims
from waiting_room.store import keys
from waiting_room.store.keys import Keyspace
from waiting_room.store.scripts import (
    AdmittedAtOnce,
    AlreadyJoined,
    ClientLimited,
    Joined,
    JoinRefused,
    ProofNeeded,
    Scripts,
    TooManyWaiting,
)

WAITING_CAP_RETRY = 30  # seconds: a hint only; one of the address's tickets must leave the line first


class QueueError(Exception):
    """A refusal with the contract's error code."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after  # seconds, for a Retry-After header


class ProofRequired(QueueError):
    """The event wants proof of work before a new ticket; the web process hands out a challenge."""

    def __init__(self, difficulty: int, used: bool) -> None:
        why = "this challenge was already used" if used else "solve the challenge to join"
        super().__init__(428, "proof_required", f"{why}: proof of work is required to join this event")
        self.difficulty = difficulty


@dataclass(frozen=True)
class TicketView:
    ticket: str
    event: str
    state: TicketState
    position: int | None
    waiting: int
    eta_seconds: int | None
    served_total: int
    opens_at: float | None = None
    claims: Claims | None = None  # when admitted: what its token says
    redirect: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ticket": self.ticket,
            "event": self.event,
            "state": str(self.state),
            "position": self.position,
            "waiting": self.waiting,
            "eta_seconds": self.eta_seconds,
        }


@dataclass(frozen=True)
class Session:
    """A redeemed ticket's session at the target; `cookie` is its secret (see core.sessions)."""

    cookie: str
    ticket: str
    expires_at: float  # unix seconds

    @property
    def event(self) -> str:
        return self.cookie.partition(".")[0]


class Queue:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        issuer: str,
        shuffle: Callable[[], int] | None = None,
        keyspace: Keyspace = keys.DEFAULT,
        *,
        tick_ms: int = 500,
    ) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.scripts = scripts
        self.issuer = issuer
        self.tick_ms = tick_ms  # the promoter's tick (WR_TICK_MS), which sizes the rate's bucket
        # the order of a pre-queue ticket: uniform in [0, SHUFFLE_RANGE); tests pass a seeded one
        self.shuffle = shuffle or (lambda: ids.randbelow(SHUFFLE_RANGE))

    async def join(
        self, event: str, uid: str, client: str = "unknown", proof: Proof | None = None
    ) -> tuple[TicketView, bool]:
        """The caller's ticket for `event` and whether it is new (idempotent per uid).

        `client` is the caller's address (core.clients) for the event's per-client controls; `proof` a
        proof of work already checked by the caller (core.proof), spent here if the event wants one."""
        k = self.keyspace.event(event)
        replace = ""
        for _ in range(3):
            reply = await self.scripts.join(
                k,
                ticket=new_ticket(event),
                uid=uid,
                shuffle=self.shuffle(),
                replace=replace,
                jti=ids.token_urlsafe(16),
                client=client,
                proof=proof,
                tick_ms=self.tick_ms,
            )
            if isinstance(reply, JoinRefused) and reply.reason == "unknown_event":
                raise QueueError(404, "unknown_event", f"there is no event {event!r}")
            if isinstance(reply, JoinRefused):
                raise QueueError(409, "event_closed", f"event {event!r} takes no more joins")
            if isinstance(reply, ProofNeeded):
                raise ProofRequired(reply.difficulty, reply.used)
            if isinstance(reply, ClientLimited):
                wait = max(1, math.ceil(reply.wait_ms / 1000))
                raise QueueError(429, "rate_limited", "too many joins from this address; try again shortly", wait)
            if isinstance(reply, TooManyWaiting):
                raise QueueError(
                    429, "too_many_tickets", f"this address already has {reply.cap} tickets waiting", WAITING_CAP_RETRY
                )
            if isinstance(reply, AlreadyJoined):
                view = await self.status(reply.ticket)
                if view is not None and not view.state.finished:
                    return view, False
                replace = reply.ticket  # finished: this browser gets a new place at the back
                continue
            if isinstance(reply, AdmittedAtOnce):
                return self._admitted_at_once(event, reply), True
            return self._joined(event, reply), True
        raise QueueError(503, "unavailable", "could not join, try again", retry_after=1)

    @staticmethod
    def _joined(event: str, reply: Joined) -> TicketView:
        position = None if reply.pre_queue else reply.rank + 1
        return TicketView(
            ticket=reply.ticket,
            event=event,
            state=TicketState.PRE_QUEUE if reply.pre_queue else TicketState.WAITING,
            position=position,
            waiting=reply.waiting,
            served_total=reply.served_total,
            opens_at=reply.opens_at,
            eta_seconds=eta.eta_seconds(position, reply.observed_rate, reply.status is EventStatus.OPEN),
        )

    def _admitted_at_once(self, event: str, reply: AdmittedAtOnce) -> TicketView:
        """The fast lane's answer: nobody waited and there was room, so the ticket is admitted already."""
        return TicketView(
            ticket=reply.ticket,
            event=event,
            state=TicketState.ADMITTED,
            position=None,
            waiting=0,
            eta_seconds=None,
            served_total=reply.served_total,
            claims=Claims.of(self.issuer, event, reply.ticket, reply.admission),
            redirect=reply.target_url or f"/order/{event}",
        )

    async def status(self, ticket: str, *, touch: bool = True) -> TicketView | None:
        """Where a ticket stands now; None if there is no such ticket. Polling counts as being seen."""
        event = event_of(ticket)
        if event is None:
            return None
        k = self.keyspace.event(event)

        def build(pipe: Pipeline) -> None:
            pipe.hget(k.tickets, ticket)
            pipe.zrank(k.line, ticket)
            pipe.zcard(k.line)
            pipe.hmget(k.stats, "served_total", "observed_rate")
            pipe.hgetall(k.settings)
            self.scripts.queue_clock(pipe, k.settings)
            if touch:
                self.scripts.queue_touch(pipe, k, [ticket])

        replies = await self.scripts.pipeline(self.redis, build, transaction=True)
        raw, rank, waiting, (served, observed), settings_raw, time_reply = replies[:6]
        if raw is None or not settings_raw:
            return None
        settings = EventSettings.from_redis(event, settings_raw)
        now = standing(TicketRecord.decode(raw), rank, settings, redis_ms(time_reply))
        claims = None if now.admission is None else Claims.of(self.issuer, event, ticket, now.admission)
        return TicketView(
            ticket=ticket,
            event=event,
            state=now.state,
            position=now.position,
            waiting=int(waiting),
            eta_seconds=eta.eta_seconds(now.position, float(observed or 0), settings.status is EventStatus.OPEN),
            served_total=int(served or 0),
            opens_at=settings.opens_at,
            claims=claims,
            redirect=settings.target_url if claims else None,
        )

    async def redeem(self, claims: Claims) -> Session:
        """Mark the ticket redeemed once and open its session."""
        if event_of(claims.ticket) != claims.event:
            raise QueueError(401, "invalid_token", "the token's audience does not match its ticket")
        cookie = new_session(claims.event)
        reply = await self.scripts.redeem(
            self.keyspace.event(claims.event), claims.ticket, claims.jti, cookie.partition(".")[2]
        )
        if reply.outcome == "ok" and reply.session_expires_ms is not None:
            return Session(cookie, claims.ticket, reply.session_expires_ms / 1000)
        if reply.outcome == "used":
            raise QueueError(409, "token_used", "this admission token has already been used")
        if reply.outcome == "expired":
            raise QueueError(401, "token_expired", "the admission token has expired")
        raise QueueError(401, "invalid_token", "the token does not match an admitted ticket")

    async def release(self, ticket: str) -> bool:
        """End the session a redeemed ticket holds (release by its token)."""
        event = event_of(ticket)
        if event is None:
            return False
        return await self.scripts.release(self.keyspace.event(event), ticket)

    async def release_session(self, cookie: str) -> bool:
        """End the session a cookie names."""
        parsed = parse_session(cookie)
        if parsed is None:
            return False
        event, secret = parsed
        return await self.scripts.release_session(self.keyspace.event(event), secret)

    async def session(self, cookie: str) -> Session | None:
        """The live session a cookie names, else None."""
        parsed = parse_session(cookie)
        if parsed is None:
            return None
        event, secret = parsed
        k = self.keyspace.event(event)
        ticket = await self.redis.get(k.session(secret))
        if ticket is None:
            return None

        def build(pipe: Pipeline) -> None:
            pipe.zscore(k.active, ticket)
            self.scripts.queue_clock(pipe, k.active)

        score, time_reply = await self.scripts.pipeline(self.redis, build, transaction=True)
        if score is None or score <= redis_ms(time_reply):
            return None  # released (perhaps by its token) or over
        return Session(cookie, str(ticket), float(score) / 1000)
