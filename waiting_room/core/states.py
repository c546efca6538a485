"""Ticket states, event statuses and WebSocket close codes, with what each means."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class TicketState(StrEnum):
    PRE_QUEUE = "pre_queue"  # joined before opens_at; ordered at random at opening
    WAITING = "waiting"
    ADMITTED = "admitted"  # holds a token that can still be redeemed
    REDEEMED = "redeemed"
    EXPIRED = "expired"  # the token was not redeemed in time
    REMOVED = "removed"  # holder gone too long, or the event closed

    @property
    def finished(self) -> bool:
        return self in (TicketState.REDEEMED, TicketState.EXPIRED, TicketState.REMOVED)


class EventStatus(StrEnum):
    OPEN = "open"
    PAUSED = "paused"  # joins accepted, nobody admitted
    SOLD_OUT = "sold_out"  # joins refused; those waiting are told
    CLOSED = "closed"  # joins refused; waiting tickets are told and removed


class CloseCode(IntEnum):
    """Close codes of /ws/tickets/{ticket}; `reconnect` tells a client whether to try again."""

    GOING_AWAY = 1001
    TOO_MANY_MESSAGES = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    REPLACED = 4001
    UNAUTHORIZED = 4401
    BAD_MESSAGE = 4400
    ORIGIN_NOT_ALLOWED = 4403
    UNKNOWN_TICKET = 4404
    NOT_WAITING = 4409

    @property
    def reconnect(self) -> bool:
        return self in (CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR)

    @property
    def explanation(self) -> str:
        return CLOSE_CODE_EXPLANATIONS[self]


CLOSE_CODE_EXPLANATIONS = {
    CloseCode.GOING_AWAY: "the server is shutting down; reconnect",
    CloseCode.TOO_MANY_MESSAGES: "the client sent more than 10 messages a second, sustained",
    CloseCode.MESSAGE_TOO_BIG: "a client message was over 1 KiB",
    CloseCode.INTERNAL_ERROR: "the server failed; reconnect",
    CloseCode.REPLACED: "a newer connection for the same ticket took over",
    CloseCode.UNAUTHORIZED: "the admin stream needs the admin token as its first message",
    CloseCode.BAD_MESSAGE: "a client message was not JSON",
    CloseCode.ORIGIN_NOT_ALLOWED: "the page's origin may not open sockets here",
    CloseCode.UNKNOWN_TICKET: "no such ticket",
    CloseCode.NOT_WAITING: "the ticket is no longer waiting or admitted (expired, removed, redeemed)",
}
