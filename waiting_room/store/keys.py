"""Every Redis key and channel name, in one place.

All keys of one event share the hash tag ``{event}``, so each event's Lua
scripts touch a single Redis Cluster slot. Scripts never build key names:
callers pass them in KEYS.

Every name starts with a prefix, "wr" unless a `Keyspace` says otherwise:
tests give each test its own, so they share one Redis without flushing it.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "wr"


@dataclass(frozen=True)
class Keyspace:
    """The names outside any one event, and each event's keys, under one prefix."""

    prefix: str = PREFIX

    @property
    def events(self) -> str:
        """set of event ids (small: one member per event)."""
        return f"{self.prefix}:events"

    @property
    def bus(self) -> str:
        """pub/sub channel every web process subscribes to (on a cluster: global notices only)."""
        return f"{self.prefix}:bus"

    @property
    def global_notice(self) -> str:
        """hash: the latest notice sent to every event."""
        return f"{self.prefix}:notice"

    @property
    def promoters(self) -> str:
        """hash: promoter id -> JSON health report (leading events, tick time)."""
        return f"{self.prefix}:promoters"

    @property
    def proof_secret(self) -> str:
        """string: the HMAC key of proof-of-work challenges, shared by web processes."""
        return f"{self.prefix}:proof-secret"

    def event(self, event: str) -> EventKeys:
        return EventKeys(event, self.prefix)


@dataclass(frozen=True)
class EventKeys:
    """The keys of one event."""

    event: str
    prefix: str = PREFIX

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{{{self.event}}}:{name}"

    @property
    def settings(self) -> str:
        """hash: the per-event settings of the contract."""
        return self._key("settings")

    @property
    def seq(self) -> str:
        """string counter: join sequence numbers."""
        return self._key("seq")

    @property
    def line(self) -> str:
        """zset: waiting tickets, score = order (pre-queue tickets random, below all others)."""
        return self._key("line")

    @property
    def tickets(self) -> str:
        """hash: ticket -> JSON record (state, order, timestamps, admission)."""
        return self._key("tickets")

    @property
    def uids(self) -> str:
        """hash: wr_uid cookie -> ticket, so joining twice returns the same ticket."""
        return self._key("uids")

    @property
    def pending(self) -> str:
        """zset: admitted, not yet redeemed tickets, score = token expiry (ms)."""
        return self._key("pending")

    @property
    def active(self) -> str:
        """zset: redeemed tickets holding capacity, score = session expiry (ms)."""
        return self._key("active")

    @property
    def stats(self) -> str:
        """hash: counters (served_total, issued, redeemed, expired, removed) and the observed rate."""
        return self._key("stats")

    @property
    def bucket(self) -> str:
        """hash: the admission token bucket (tokens, last refill ms)."""
        return self._key("bucket")

    @property
    def lease(self) -> str:
        """string: id of the promoter leading this event; PX lease, checked by every promote."""
        return self._key("lease")

    @property
    def departed(self) -> str:
        """zset: waiting ticket no socket holds -> since when (ms: join, close, last poll, or the last
        heartbeat of the web process that held it), for abandonment."""
        return self._key("departed")

    @property
    def advances(self) -> str:
        """string counter: sequence number of the event's `advance` messages (see core/ranks.py)."""
        return self._key("advances")

    @property
    def holders(self) -> str:
        """hash: ticket -> id of the web process holding its socket."""
        return self._key("holders")

    def held(self, process: str) -> str:
        """set: tickets whose socket web process `process` holds, so its death frees them in one go."""
        return self._key(f"held:{process}")

    @property
    def done(self) -> str:
        """zset: finished ticket -> when (ms), so old records are trimmed a batch at a time."""
        return self._key("done")

    @property
    def notice(self) -> str:
        """hash: the latest live notice of this event."""
        return self._key("notice")

    def client_joins(self, client: str) -> str:
        """hash: one client address's join token bucket (tokens, last refill ms); expires once full again."""
        return self._key(f"client-joins:{client}")

    def client_waiting(self, client: str) -> str:
        """set: the tickets one client address has waiting (only while client_max_waiting is on)."""
        return self._key(f"client-waiting:{client}")

    def proof(self, salt: str) -> str:
        """string: a proof-of-work challenge already used to join; expires with the challenge."""
        return self._key(f"proof:{salt}")

    def session(self, secret: str) -> str:
        """string: the ticket a redeemed session belongs to, named by the session cookie's secret;
        expires with the session."""
        return self._key(f"session:{secret}")

    @property
    def bus(self) -> str:
        """shard channel (Redis Cluster): this event's bus messages, on the shard that owns the event."""
        return self._key("bus")

    @property
    def conns(self) -> str:
        """hash: web process id -> "count:ms": its open sockets for this event and its last heartbeat (Redis
        time); a lapsed heartbeat hands its held tickets to `departed`. Expires unless renewed."""
        return self._key("conns")


DEFAULT = Keyspace()
