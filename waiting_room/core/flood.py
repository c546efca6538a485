"""How many messages a WebSocket client may send: the server needs none, so a steady stream is abuse.

A token bucket per socket: up to MESSAGES_PER_SECOND sustained, with a short burst allowed (a page
that queued a few messages while the network was away), and more than that sustained closes the
socket with 1008. Four sockets sending flat out once took 6.6 CPU-seconds in 8 s of one web process.
"""

from __future__ import annotations

from dataclasses import dataclass

MESSAGES_PER_SECOND = 10.0
BURST = 20.0


@dataclass
class MessageBudget:
    per_second: float = MESSAGES_PER_SECOND
    burst: float = BURST
    tokens: float = BURST
    at: float | None = None

    def take(self, now: float) -> bool:
        """Count one message at `now` (monotonic seconds); False once the client is over its budget."""
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
