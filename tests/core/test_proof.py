"""Proof-of-work challenges: authentic, bound to event and client, fresh, solved."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from waiting_room.core.proof import ALGORITHM, CHALLENGE_SECONDS, Proof, issue, leading_zero_bits, solve, verify

SECRET = b"k" * 32
NOW = 1_800_000_000.0


def solved(difficulty: int = 10, event: str = "sale", client: str = "203.0.113.7") -> dict[str, Any]:
    challenge = issue(SECRET, event, client, difficulty, NOW)
    return {"challenge": challenge["challenge"], "nonce": solve(str(challenge["challenge"]), difficulty)}


def test_an_issued_challenge_says_what_to_do() -> None:
    challenge = issue(SECRET, "sale", "203.0.113.7", 12, NOW)
    assert challenge["difficulty"] == 12 and challenge["algorithm"] == ALGORITHM
    assert challenge["expires_at"] == NOW + CHALLENGE_SECONDS
    assert issue(SECRET, "sale", "203.0.113.7", 12, NOW)["challenge"] != challenge["challenge"]  # salted


def test_a_solved_challenge_verifies_once_per_salt() -> None:
    given = solved(10)
    proof = verify(SECRET, "sale", "203.0.113.7", given, NOW + 1)
    assert isinstance(proof, Proof) and proof.difficulty == 10 and proof.expires_at == NOW + CHALLENGE_SECONDS
    digest = hashlib.sha256(f"{given['challenge']}:{given['nonce']}".encode()).digest()
    assert leading_zero_bits(digest) >= 10


def unsolved(given: dict[str, Any]) -> dict[str, Any]:
    """The same challenge with a nonce that does not do the work."""
    n = 0
    while verify(SECRET, "sale", "203.0.113.7", {**given, "nonce": f"x{n}"}, NOW) is not None:
        n += 1
    return {**given, "nonce": f"x{n}"}


@pytest.mark.parametrize(
    "case",
    ["other event", "other client", "expired", "unsolved", "forged difficulty", "other secret", "shapes"],
)
def test_anything_else_is_no_proof(case: str) -> None:
    given = solved(10)
    event, client, now, secret = "sale", "203.0.113.7", NOW, SECRET
    candidates: list[object] = [given]
    if case == "other event":
        event = "other"
    elif case == "other client":
        client = "203.0.113.8"
    elif case == "expired":
        now = NOW + CHALLENGE_SECONDS + 1
    elif case == "unsolved":
        candidates = [unsolved(given)]
    elif case == "forged difficulty":
        candidates = [{**given, "challenge": "0" + given["challenge"].removeprefix("10")}]
    elif case == "other secret":
        secret = b"j" * 32
    else:
        candidates = [
            None,
            "x",
            [],
            {},
            {"challenge": given["challenge"]},
            {**given, "nonce": 7},
            {**given, "nonce": "\ud800"},
            {**given, "nonce": "n" * 65},
            {**given, "challenge": "a.b.c.d"},
        ]
    for candidate in candidates:
        assert verify(secret, event, client, candidate, now) is None, candidate


@pytest.mark.parametrize(("digest", "bits"), [(b"\x80", 0), (b"\x01", 7), (b"\x00\x40", 9), (b"\x00" * 32, 256)])
def test_leading_zero_bits(digest: bytes, bits: int) -> None:
    assert leading_zero_bits(digest) == bits
