"""Proof of work at join: a client shows it spent a little CPU before it gets a place in line.

Stateless challenges, so checking one needs no Redis: the web process signs (HMAC, a secret all web
processes share) what the challenge says and whom it is for: the event, the client, the difficulty,
an expiry and a random salt. The work: find a nonce such that SHA-256 of ``"{challenge}:{nonce}"``
starts with `difficulty` zero bits (2**difficulty tries on average). Single use is enforced at join, in
the same script that creates the ticket (the salt is remembered until the challenge expires).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from itertools import count

ALGORITHM = "sha256-leading-zero-bits"
MAX_DIFFICULTY = 24  # 16 M hashes on average: seconds in a phone's browser; more would shut phones out
CHALLENGE_SECONDS = 120
_CHALLENGE = re.compile(r"^(\d{1,2})\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Proof:
    """A solved, authentic, unexpired challenge: what join needs to know of it."""

    salt: str
    difficulty: int
    expires_at: int


def _mac(secret: bytes, event: str, client: str, difficulty: int, expires_at: int, salt: str) -> str:
    message = f"{event}\n{client}\n{difficulty}\n{expires_at}\n{salt}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(secret: bytes, event: str, client: str, difficulty: int, now: float) -> dict[str, object]:
    """A challenge for `client` to join `event`, as API clients receive it."""
    expires_at = int(now) + CHALLENGE_SECONDS
    salt = secrets.token_urlsafe(16)
    mac = _mac(secret, event, client, difficulty, expires_at, salt)
    return {
        "challenge": f"{difficulty}.{expires_at}.{salt}.{mac}",
        "difficulty": difficulty,
        "algorithm": ALGORITHM,
        "expires_at": expires_at,
    }


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def work_done(challenge: str, nonce: str) -> int:
    return leading_zero_bits(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest())


def verify(secret: bytes, event: str, client: str, given: object, now: float) -> Proof | None:
    """The proof in a join body (`{"challenge", "nonce"}`), if it is authentic, fresh and solved."""
    if not isinstance(given, dict):
        return None
    challenge, nonce = given.get("challenge"), given.get("nonce")
    if not isinstance(challenge, str) or not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        return None
    parts = _CHALLENGE.fullmatch(challenge)
    if parts is None:
        return None
    difficulty, expires_at, salt, mac = int(parts[1]), int(parts[2]), parts[3], parts[4]
    if not hmac.compare_digest(mac, _mac(secret, event, client, difficulty, expires_at, salt)):
        return None
    if expires_at < now or work_done(challenge, nonce) < difficulty:
        return None
    return Proof(salt, difficulty, expires_at)


def solve(challenge: str, difficulty: int) -> str:
    """What an API client runs (2**difficulty hashes on average)."""
    for n in count():
        if work_done(challenge, str(n)) >= difficulty:
            return str(n)
    raise AssertionError("unreachable")
