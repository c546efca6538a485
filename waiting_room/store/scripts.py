"""The Lua scripts, each behind one typed wrapper that owns its KEYS order, its ARGV and its reply.

Nothing outside this module builds a script's KEYS or indexes its reply: a
call site passes an event's keys and named arguments and gets a named type
back. The KEYS/ARGV lists at the top of each .lua file are the same as the
ones built here (tests/store/test_lua_scripts.py calls every wrapper).

Called on their own, redis-py's Script objects send EVALSHA and load the
source on NOSCRIPT. Inside a pipeline redis-py would instead send SCRIPT
EXISTS before every pipeline, one more round trip on every tick, refresh
and status poll; the `queue_*` methods below add a bare EVALSHA, and
`pipeline()` loads the scripts only when Redis says it has forgotten them
(after a restart), then runs the pipeline again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from waiting_room.core.presence import LAPSE_SECONDS
from waiting_room.core.proof import Proof
from waiting_room.core.states import EventStatus
from waiting_room.core.tickets import SHUFFLE_RANGE, Admission
from waiting_room.store.batcher import Batcher
from waiting_room.store.durable import Command, Durability
from waiting_room.store.keys import EventKeys
from waiting_room.store.redis_client import execute, is_cluster
from waiting_room.store.wire import Line

NAMES = ("clock", "join", "promote", "redeem", "release", "touch", "hold", "depart", "reap")


def source(name: str) -> str:
    return resources.files("waiting_room.store").joinpath("lua", f"{name}.lua").read_text()


# --- replies ------------------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    """join.lua issued a new ticket."""

    ticket: str
    rank: int
    waiting: int
    served_total: int
    pre_queue: bool
    observed_rate: float
    status: EventStatus
    opens_at: float | None


@dataclass(frozen=True)
class AlreadyJoined:
    """This wr_uid already holds `ticket` (and it was not the one offered for replacement)."""

    ticket: str


@dataclass(frozen=True)
class JoinRefused:
    reason: Literal["unknown_event", "event_closed"]


@dataclass(frozen=True)
class ProofNeeded:
    """The event wants a proof of work of `difficulty`, and the caller brought none good enough
    (`used`: the one it brought already bought a ticket)."""

    difficulty: int
    used: bool


@dataclass(frozen=True)
class ClientLimited:
    """The caller's address is over the event's per-client join rate; try again in `wait_ms`."""

    wait_ms: int


@dataclass(frozen=True)
class TooManyWaiting:
    """The caller's address already has `cap` tickets waiting (the event's client_max_waiting)."""

    cap: int


@dataclass(frozen=True)
class AdmittedAtOnce:
    """join.lua's fast lane (queue_only_when_full) admitted the new ticket without it waiting."""

    ticket: str
    served_total: int
    admission: Admission
    target_url: str  # "" when the settings hash has none


JoinReply = Joined | AdmittedAtOnce | AlreadyJoined | JoinRefused | ProofNeeded | ClientLimited | TooManyWaiting


@dataclass(frozen=True)
class PromoteArgs:
    """What a promoter tells promote.lua about one event."""

    owner: str  # fencing: nothing is written unless this id holds the lease
    lease_ms: int
    tick_ms: int  # the tick length: the rate's bucket in Redis holds one tick's share
    observed_rate: float | None  # per minute; None keeps the stored one
    channel: str  # where the `advance` message goes
    last_published: str  # "served:waiting" of the last message published, to skip unchanged ticks
    batch: int  # most tickets expired / removed / trimmed per tick
    keep_finished_ms: int
    publish: str = "PUBLISH"  # the command that sends it ("SPUBLISH" on a cluster); "" to only return it
    lapse_ms: int = int(LAPSE_SECONDS * 1000)  # a web process silent this long is dead (core/presence.py)


@dataclass(frozen=True)
class Promoted:
    """One event's tick; `leading` False means another promoter holds the lease and nothing was done."""

    leading: bool
    admitted: int = 0
    served_total: int = 0
    waiting: int = 0
    status: EventStatus = EventStatus.OPEN
    rate_per_minute: float = 0.0
    opens_at: float | None = None
    published: bool = False  # an `advance` message was due (sent, unless the promoter sends it itself)
    pre_open: bool = False
    fast: int = 0  # admitted by join.lua's fast lane since the last tick (they spent the same rate)
    message: str = ""  # the `advance` message that was due, or ""
    lapsed: tuple[str, ...] = ()  # web processes whose heartbeat lapsed: reap them


@dataclass(frozen=True)
class Redeemed:
    outcome: Literal["ok", "invalid", "used", "expired"]
    session_expires_ms: int | None = None


def _float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _join_reply(reply: list[Any]) -> JoinReply:
    kind = reply[0]
    if kind in ("unknown_event", "event_closed"):
        return JoinRefused(kind)
    if kind == "existing":
        return AlreadyJoined(str(reply[1]))
    if kind == "proof_required":
        return ProofNeeded(int(reply[1]), reply[2] == "used")
    if kind == "rate_limited":
        return ClientLimited(int(reply[1]))
    if kind == "too_many_waiting":
        return TooManyWaiting(int(reply[1]))
    if kind == "admitted":
        _, ticket, served, admitted_ms, expires_ms, jti, target_url = reply
        admission = Admission(str(jti), int(admitted_ms), int(expires_ms))
        return AdmittedAtOnce(str(ticket), int(served), admission, str(target_url))
    _, ticket, rank, waiting, served, pre, observed, status, opens_at = reply
    return Joined(
        ticket=str(ticket),
        rank=int(rank),
        waiting=int(waiting),
        served_total=int(served),
        pre_queue=bool(int(pre)),
        observed_rate=float(observed or 0),
        status=EventStatus(status),
        opens_at=_float(opens_at),
    )


def promote_reply(reply: list[Any]) -> Promoted:
    if int(reply[0]) == 0:
        return Promoted(leading=False)
    _, admitted, served, waiting, status, rate, opens_at, published, pre_open, fast, message, lapsed = reply
    return Promoted(
        leading=True,
        admitted=int(admitted),
        served_total=int(served),
        waiting=int(waiting),
        status=EventStatus(status),
        rate_per_minute=float(rate),
        opens_at=_float(opens_at),
        published=bool(int(published)),
        pre_open=bool(int(pre_open)),
        fast=int(fast),
        message=str(message),
        lapsed=tuple(str(p) for p in lapsed) if isinstance(lapsed, list) else (),
    )


def _redeem_reply(reply: list[Any]) -> Redeemed:
    outcome = reply[0]
    if outcome == "ok":
        return Redeemed("ok", int(reply[1]))
    return Redeemed(outcome if outcome in ("used", "expired") else "invalid")


# --- the wrappers -------------------------------------------------------------


@dataclass(frozen=True)
class _Join:
    """One join waiting for its batch: its event, its own KEYS and ARGV in join.lua, the promoter's tick."""

    k: EventKeys
    keys: list[str]
    argv: list[str | int]
    tick_ms: int


class Scripts:
    """`min_replicas`: joins and redemptions are acknowledged only once that many replicas hold
    them (store/durable.py); the promoter applies the same to its ticks."""

    def __init__(self, redis: Redis, min_replicas: int = 0) -> None:
        self._redis = redis
        self._scripts: dict[str, AsyncScript] = {name: redis.register_script(source(name)) for name in NAMES}
        self.joins: Batcher[_Join] = Batcher(self._send_joins)  # joins arriving together share a round trip
        self._join_line = Line(redis)
        self.durability = Durability(redis, min_replicas)

    @classmethod
    def register(cls, redis: Redis, min_replicas: int = 0) -> Scripts:
        return cls(redis, min_replicas)

    async def _write(self, name: str, keys: list[str], args: list[Any], *, precheck: bool = False) -> Any:
        """A write, acknowledged once WR_REDIS_MIN_REPLICAS replicas hold it (see `durable`)."""
        if not self.durability.enabled:
            return await self._scripts[name](keys, args)
        return await self.durability.script(self._scripts[name], keys, args, precheck=precheck)

    @property
    def redis(self) -> Redis:
        return self._redis

    async def join(
        self,
        k: EventKeys,
        *,
        ticket: str,
        uid: str,
        shuffle: int,
        replace: str,
        jti: str,
        client: str,
        proof: Proof | None,
        tick_ms: int,
    ) -> JoinReply:
        """Issue `ticket` to `uid` unless it holds one (`replace`: its finished ticket, which may go).

        `client` is the caller's address for the event's per-client controls; `proof` a proof of work
        the web process already checked (core.proof), spent here if the event wants one; `tick_ms` the
        promoter's tick, which sizes the rate's bucket the fast lane spends from."""
        one = self._join_item(k, ticket, uid, shuffle, replace, jti, client, proof, tick_ms)
        if self.durability.enabled:  # each join waits for its replicas (see `durable`)
            keys, argv = self._join_batch([one])
            replies = await self.durability.script(self._scripts["join"], keys, argv, precheck=False)
            return _join_reply(replies[0])
        return _join_reply(await self.joins.call(one))

    async def _send_joins(self, batch: list[_Join]) -> list[Any]:
        """The batcher's send: one join.lua run per event, all sent together; a run that failed fails
        each of its joins."""
        by_event: dict[str, list[int]] = {}
        for i, one in enumerate(batch):
            by_event.setdefault(one.k.settings, []).append(i)
        calls = [self._join_batch([batch[i] for i in indexes]) for indexes in by_event.values()]
        runs = await self._run_joins(calls)
        replies: list[Any] = [None] * len(batch)
        for indexes, run in zip(by_event.values(), runs, strict=True):
            for n, i in enumerate(indexes):
                replies[i] = run if isinstance(run, Exception) else run[n]
        return replies

    def queue_join(
        self, pipe: Pipeline, k: EventKeys, *, ticket: str, uid: str, shuffle: int, jti: str, tick_ms: int
    ) -> None:
        """A plain join (no replacement, proof or client controls) in a pipeline: for bulk loads (bench);
        its reply is a list of one join reply."""
        self._queue(pipe, "join", *self.join_call(k, ticket, uid, shuffle, "", jti, "bulk", None, tick_ms))

    async def _run_joins(self, calls: list[tuple[list[str], list[str | int]]]) -> list[Any]:
        """The join runs' replies (each a list of join replies, or the error of the whole run)."""
        if is_cluster(self._redis):  # a cluster pipeline sends each run to its event's node

            def build(pipe: Pipeline) -> None:
                for keys, argv in calls:
                    self._queue(pipe, "join", keys, argv)

            return await self.pipeline(self._redis, build, transaction=False, raise_on_error=False)
        sha = self._scripts["join"].sha
        commands = [["EVALSHA", sha, len(keys), *keys, *argv] for keys, argv in calls]
        runs = await self._join_line.run(commands)
        if any(isinstance(run, NoScriptError) for run in runs):  # Redis restarted: every run failed alike
            await self.load()
            runs = await self._join_line.run(commands)
        return runs

    @classmethod
    def join_call(
        cls,
        k: EventKeys,
        ticket: str,
        uid: str,
        shuffle: int,
        replace: str,
        jti: str,
        client: str,
        proof: Proof | None,
        tick_ms: int,
    ) -> tuple[list[str], list[str | int]]:
        """join.lua's KEYS and ARGV for a batch of one (public for bench/baselines.py, whose one-EVALSHA
        floor must stay the same call as ours)."""
        return cls._join_batch([cls._join_item(k, ticket, uid, shuffle, replace, jti, client, proof, tick_ms)])

    @staticmethod
    def _join_item(
        k: EventKeys,
        ticket: str,
        uid: str,
        shuffle: int,
        replace: str,
        jti: str,
        client: str,
        proof: Proof | None,
        tick_ms: int,
    ) -> _Join:
        """One join's own KEYS and ARGV in join.lua (see its top)."""
        proved = [proof.difficulty, proof.expires_at * 1000] if proof else [0, 0]
        keys = [k.client_joins(client), k.client_waiting(client), k.proof(proof.salt if proof else "-")]
        return _Join(k, keys, [ticket, uid, shuffle, replace, jti, *proved], tick_ms)

    @staticmethod
    def _join_batch(joins: Sequence[_Join]) -> tuple[list[str], list[str | int]]:
        """KEYS and ARGV of one join.lua run for joins of one event (see the top of join.lua)."""
        k = joins[0].k
        keys = [k.settings, k.seq, k.line, k.tickets, k.uids, k.stats, k.departed, k.pending, k.active, k.bucket]
        argv: list[str | int] = [SHUFFLE_RANGE, joins[0].tick_ms]
        for one in joins:
            keys += one.keys
            argv += one.argv
        return keys, argv

    def queue_promote(self, pipe: Pipeline, k: EventKeys, args: PromoteArgs) -> None:
        """Add one event's tick to `pipe`; read its reply with `promote_reply`."""
        self._queue(pipe, "promote", *self._promote_call(k, args))

    def promote_command(self, k: EventKeys, args: PromoteArgs) -> Command:
        """One event's tick as a command for `Durability.send` (which WAITs on the node that ran it)."""
        keys, argv = self._promote_call(k, args)
        return Command(k.settings, ("EVALSHA", self._scripts["promote"].sha, len(keys), *keys, *argv))

    @staticmethod
    def _promote_call(k: EventKeys, args: PromoteArgs) -> tuple[list[str], list[str | int]]:
        observed = "" if args.observed_rate is None else f"{args.observed_rate:.3f}"
        keys = [
            *(k.settings, k.line, k.tickets, k.pending, k.active, k.stats, k.lease, k.departed),
            *(k.done, k.uids, k.bucket, k.advances, k.conns),
        ]
        argv: list[str | int] = [
            args.owner,
            args.lease_ms,
            args.tick_ms,
            observed,
            args.channel,
            args.last_published,
            args.batch,
            args.keep_finished_ms,
            args.publish,
            args.lapse_ms,
        ]
        return keys, argv

    async def promote(self, k: EventKeys, args: PromoteArgs) -> Promoted:
        """One event's tick on its own (the promoter pipelines them with `queue_promote`)."""
        [reply] = await self.pipeline(self._redis, lambda pipe: self.queue_promote(pipe, k, args), transaction=False)
        return promote_reply(reply)

    async def redeem(self, k: EventKeys, ticket: str, jti: str, session_secret: str) -> Redeemed:
        """Redeem once and open the session that `session_secret` (the cookie's secret) names."""
        # checked first: a redemption refused for want of replicas must not have spent the token
        reply = await self._write(
            "redeem",
            [k.tickets, k.pending, k.active, k.stats, k.settings, k.done, k.session(session_secret)],
            [ticket, jti],
            precheck=True,
        )
        return _redeem_reply(reply)

    async def release(self, k: EventKeys, ticket: str) -> bool:
        """True if the ticket's live session was released."""
        return bool(await self._scripts["release"]([k.active, k.tickets], [ticket]))

    async def release_session(self, k: EventKeys, session_secret: str) -> bool:
        """True if the live session a cookie's secret names was released."""
        return bool(await self._scripts["release"]([k.active, k.tickets, k.session(session_secret)], [""]))

    async def touch(self, k: EventKeys, tickets: Sequence[str]) -> int:
        """A status poll: departed tickets are departed from now; returns how many were."""
        return int(await self._scripts["touch"]([k.departed], list(tickets)))

    def queue_touch(self, pipe: Pipeline, k: EventKeys, tickets: Sequence[str]) -> None:
        self._queue(pipe, "touch", [k.departed], tickets)

    def queue_hold(self, pipe: Pipeline, k: EventKeys, process: str, sockets: int, tickets: Sequence[str]) -> None:
        """`process` holds sockets for `tickets` (none: only its heartbeat); reply 1 if its heartbeat entry was
        new (the first, or it was taken for dead and must hold its sockets again), read with `int`."""
        self._queue(pipe, "hold", [k.departed, k.holders, k.held(process), k.conns], [process, sockets, *tickets])

    async def hold(self, k: EventKeys, process: str, sockets: int, tickets: Sequence[str]) -> bool:
        [reply] = await self.pipeline(
            self._redis, lambda pipe: self.queue_hold(pipe, k, process, sockets, tickets), transaction=False
        )
        return int(reply) == 1

    async def depart(self, k: EventKeys, process: str, tickets: Sequence[str]) -> int:
        """Sockets of `process` closed: holders it still held depart now; returns how many."""
        return int(await self._scripts["depart"]([k.line, k.departed, k.holders, k.held(process)], [process, *tickets]))

    def queue_reap(self, pipe: Pipeline, k: EventKeys, process: str, lapse_ms: int) -> None:
        """Whoever `process` still holds departs as of its last heartbeat, if older than `lapse_ms` (0: now,
        it is stopping); reply: how many departed, or -1 if its heartbeat is fresh (read with `int`)."""
        self._queue(pipe, "reap", [k.conns, k.held(process), k.holders, k.line, k.departed], [process, lapse_ms])

    async def reap(self, k: EventKeys, process: str, lapse_ms: int) -> int:
        [reply] = await self.pipeline(
            self._redis, lambda pipe: self.queue_reap(pipe, k, process, lapse_ms), transaction=False
        )
        return int(reply)

    def queue_clock(self, pipe: Pipeline, key: str) -> None:
        """Redis time inside a MULTI on `key`'s slot (a cluster refuses a keyless TIME there)."""
        self._queue(pipe, "clock", [key], [])

    # --- pipelines --------------------------------------------------------------

    def _queue(self, pipe: Pipeline, name: str, keys: Sequence[str], args: Sequence[str | int | float]) -> None:
        """A bare EVALSHA (no SCRIPT EXISTS first); run the pipeline with `pipeline()`."""
        # sent as a plain command: a cluster pipeline routes it by its keys (it refuses pipe.evalsha)
        pipe.execute_command("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args)

    async def load(self) -> None:
        for script in self._scripts.values():
            await script.registered_client.script_load(script.script)

    async def pipeline(
        self, redis: Redis, build: Callable[[Pipeline], None], *, transaction: bool, raise_on_error: bool = True
    ) -> list[Any]:
        """Build and run a pipeline; if Redis has forgotten the scripts, load them and run it once more.

        Running it again is safe where it is used: after a restart every EVALSHA of the pipeline failed
        alike, and the other commands are reads, idempotent marks and `claim` messages."""
        for attempt in (1, 2):
            try:
                replies = await execute(redis, build, transaction=transaction, raise_on_error=raise_on_error)
            except NoScriptError:
                replies = [NoScriptError()]
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                await self.load()
                continue
            if any(isinstance(r, NoScriptError) for r in replies) and raise_on_error:
                raise NoScriptError("the scripts could not be loaded")
            return replies
        raise AssertionError("unreachable")
