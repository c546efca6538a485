"""Ticket operations over Redis: join, status, redeem, release.

Each is one round trip: a Lua script or a MULTI pipeline whose reads are
consistent with each other (a rank and the served_total it goes with).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from waiting_room.core import eta
from waiting_room.core.event_settings import EventSettings
from waiting_room.core.proof import Proof
from waiting_room.core.sessions import new_session, parse_session
from waiting_room.core.states import EventStatus, TicketState
from waiting_room.core.tickets import SHUFFLE_RANGE, TicketRecord, event_of, new_ticket
from waiting_room.core.tokens import Claims
from waiting_room.store.keys import EventKeys
from waiting_room.store.scripts import Scripts

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


def _ms_now(time_reply: Any) -> int:
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) // 1000


def _float(value: str | None) -> float | None:
    return None if value is None or value == "" else float(value)


class Queue:
    def __init__(self, redis: Redis, scripts: Scripts, issuer: str, shuffle: Callable[[], int] | None = None) -> None:
        self.redis = redis
        self.scripts = scripts
        self.issuer = issuer
        # the order of a pre-queue ticket: uniform in [0, SHUFFLE_RANGE); tests pass a seeded one
        self.shuffle = shuffle or (lambda: secrets.randbelow(SHUFFLE_RANGE))

    async def join(
        self, event: str, uid: str, client: str = "unknown", proof: Proof | None = None
    ) -> tuple[TicketView, bool]:
        """The caller's ticket for `event` and whether it is new (idempotent per uid).

        `client` is the caller's address (core.clients) for the event's per-client controls; `proof` a
        proof of work already checked by the caller (core.proof), spent here if the event wants one."""
        k = EventKeys(event)
        keys = [k.settings, k.seq, k.line, k.tickets, k.uids, k.stats, k.seen]
        keys += [k.client_joins(client), k.client_waiting(client), k.proof(proof.salt if proof else "-")]
        proved = [proof.difficulty, proof.expires_at * 1000] if proof else [0, 0]
        replace = ""
        for _ in range(3):
            args: list[str | int] = [new_ticket(event), uid, self.shuffle(), replace, secrets.token_urlsafe(16)]
            reply = await self.scripts.join(keys, [*args, *proved])
            kind = reply[0]
            if kind == "unknown_event":
                raise QueueError(404, "unknown_event", f"there is no event {event!r}")
            if kind == "event_closed":
                raise QueueError(409, "event_closed", f"event {event!r} takes no more joins")
            if kind == "proof_required":
                raise ProofRequired(int(reply[1]), reply[2] == "used")
            if kind == "rate_limited":
                wait = max(1, math.ceil(int(reply[1]) / 1000))
                raise QueueError(429, "rate_limited", "too many joins from this address; try again shortly", wait)
            if kind == "too_many_waiting":
                raise QueueError(
                    429, "too_many_tickets", f"this address already has {reply[1]} tickets waiting", WAITING_CAP_RETRY
                )
            if kind == "existing":
                view = await self.status(reply[1])
                if view is not None and not view.state.finished:
                    return view, False
                replace = reply[1]  # finished: this browser gets a new place at the back
                continue
            return self._joined(event, reply), True
        raise QueueError(503, "unavailable", "could not join, try again")

    @staticmethod
    def _joined(event: str, reply: list[Any]) -> TicketView:
        _, ticket, rank, waiting, served, pre, observed, status, opens_at = reply
        position = None if pre else int(rank) + 1
        return TicketView(
            ticket=ticket,
            event=event,
            state=TicketState.PRE_QUEUE if pre else TicketState.WAITING,
            position=position,
            waiting=int(waiting),
            served_total=int(served),
            opens_at=_float(opens_at),
            eta_seconds=eta.eta_seconds(position, float(observed), status == EventStatus.OPEN),
        )

    async def status(self, ticket: str, *, touch: bool = True) -> TicketView | None:
        """Where a ticket stands now; None if there is no such ticket. Polling counts as being seen."""
        event = event_of(ticket)
        if event is None:
            return None
        k = EventKeys(event)

        def build(pipe: Pipeline) -> None:
            pipe.hget(k.tickets, ticket)
            pipe.zrank(k.line, ticket)
            pipe.zcard(k.line)
            pipe.hmget(k.stats, "served_total", "observed_rate")
            pipe.hgetall(k.settings)
            pipe.time()
            if touch:
                self.scripts.queue(pipe, self.scripts.touch, [k.seen], [ticket])

        replies = await self.scripts.pipeline(self.redis, build, transaction=True)
        raw, rank, waiting, (served, observed), settings_raw, time_reply = replies[:6]
        if raw is None or not settings_raw:
            return None
        settings = EventSettings.from_redis(event, settings_raw)
        record = TicketRecord.decode(raw)
        now_ms = _ms_now(time_reply)
        state = record.state(now_ms, settings.opens_at)
        position = rank + 1 if rank is not None and state is TicketState.WAITING else None
        admitting = settings.status is EventStatus.OPEN
        claims = None
        if state is TicketState.ADMITTED:
            claims = self.claims(event, ticket, *record.admission)
        return TicketView(
            ticket=ticket,
            event=event,
            state=state,
            position=position,
            waiting=int(waiting),
            eta_seconds=eta.eta_seconds(position, _float(observed) or 0.0, admitting),
            served_total=int(served or 0),
            opens_at=settings.opens_at,
            claims=claims,
            redirect=settings.target_url if claims else None,
        )

    def claims(self, event: str, ticket: str, jti: str, admitted_ms: int, expires_ms: int) -> Claims:
        """What an admission's token says. One rounding of the scripts' milliseconds, used by every
        path (status, socket connect, the `advance` fan-out), so every process mints the same token."""
        return Claims(
            issuer=self.issuer,
            event=event,
            ticket=ticket,
            jti=jti,
            issued_at=admitted_ms // 1000,
            expires_at=expires_ms // 1000,
        )

    async def redeem(self, claims: Claims) -> Session:
        """Mark the ticket redeemed once and open its session."""
        if event_of(claims.ticket) != claims.event:
            raise QueueError(401, "invalid_token", "the token's audience does not match its ticket")
        k = EventKeys(claims.event)
        cookie = new_session(claims.event)
        session_key = k.session(cookie.partition(".")[2])
        reply = await self.scripts.redeem(
            [k.tickets, k.pending, k.active, k.stats, k.settings, k.done, session_key], [claims.ticket, claims.jti]
        )
        outcome = reply[0]
        if outcome == "ok":
            return Session(cookie, claims.ticket, int(reply[1]) / 1000)
        if outcome == "used":
            raise QueueError(409, "token_used", "this admission token has already been used")
        if outcome == "expired":
            raise QueueError(401, "token_expired", "the admission token has expired")
        raise QueueError(401, "invalid_token", "the token does not match an admitted ticket")

    async def release(self, ticket: str) -> bool:
        """End the session a redeemed ticket holds (release by its token)."""
        event = event_of(ticket)
        if event is None:
            return False
        k = EventKeys(event)
        return bool(await self.scripts.release([k.active, k.tickets], [ticket]))

    async def release_session(self, cookie: str) -> bool:
        """End the session a cookie names."""
        parsed = parse_session(cookie)
        if parsed is None:
            return False
        event, secret = parsed
        k = EventKeys(event)
        return bool(await self.scripts.release([k.active, k.tickets, k.session(secret)], [""]))

    async def session(self, cookie: str) -> Session | None:
        """The live session a cookie names, else None."""
        parsed = parse_session(cookie)
        if parsed is None:
            return None
        event, secret = parsed
        k = EventKeys(event)
        ticket = await self.redis.get(k.session(secret))
        if ticket is None:
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zscore(k.active, ticket)
            pipe.time()
            score, time_reply = await pipe.execute()
        if score is None or score <= _ms_now(time_reply):
            return None  # released (perhaps by its token) or over
        return Session(cookie, str(ticket), float(score) / 1000)
