"""Offline token checks and the JWKS cache, without a network: the fetch is a function we count."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from waiting_room.core.tokens import Claims, Signer, TokenError
from waiting_room.gate.tokens import KeySet, Verifier, check, parse_jwks
from waiting_room.gate.upstream import Unavailable

ISSUER = "https://queue.example"
EVENT = "spring-sale"


def claims(event: str = EVENT, expires_in: int = 300, issuer: str = ISSUER) -> Claims:
    now = int(time.time())
    return Claims(issuer, event, f"{event}.{'A' * 24}", "jti-1", now, now + expires_in)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


OLD_KEY = ed25519.Ed25519PrivateKey.generate()
SIGNER = Signer(OLD_KEY, ISSUER)
KEY = parse_jwks(SIGNER.jwks)[SIGNER.kid]


def refusal(token: str, event: str = EVENT) -> str:
    with pytest.raises(TokenError) as refused:
        check(token, KEY, ISSUER, event)
    return refused.value.code


def test_a_good_token_passes() -> None:
    assert check(SIGNER.mint(claims()), KEY, ISSUER, EVENT) == claims()


def test_tokens_that_must_be_refused() -> None:
    assert refusal(SIGNER.mint(claims(expires_in=-5))) == "token_expired"
    assert refusal(SIGNER.mint(claims(event="other-sale"))) == "invalid_token"
    assert refusal(SIGNER.mint(claims(issuer="https://evil.example"))) == "invalid_token"
    good = SIGNER.mint(claims())
    head, payload, signature = good.split(".")
    swapped = json.loads(base64.urlsafe_b64decode(payload + "=="))
    swapped["aud"] = "vip-drop"
    assert refusal(f"{head}.{b64(json.dumps(swapped).encode())}.{signature}", "vip-drop") == "invalid_token"
    sig = good.split(".")[2]
    assert refusal(good.replace(sig, sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:])) == "invalid_token"
    foreign = jwt.encode(
        claims().to_jwt(), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": SIGNER.kid}
    )
    assert refusal(foreign) == "invalid_token"
    for garbage in ("", "x", "a.b.c", "x" * 5000):
        assert refusal(garbage) == "invalid_token"


def test_alg_none_and_hmac_with_the_public_key_are_refused() -> None:
    none = unsigned({"alg": "none", "kid": SIGNER.kid, "typ": "JWT"}, claims().to_jwt())
    assert refusal(none) == "invalid_token"
    public_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for alg in ("HS256", "HS512"):
        head = b64(json.dumps({"alg": alg, "kid": SIGNER.kid}).encode())
        body = b64(json.dumps(claims().to_jwt()).encode())
        mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
        assert refusal(f"{head}.{body}.{b64(mac)}") == "invalid_token"


class FakeJwks:
    """The waiting room's JWKS endpoint as a function: what it serves now, and how often it was asked."""

    def __init__(self, signer: Signer) -> None:
        self.jwks: dict[str, Any] = signer.jwks
        self.calls = 0
        self.down = False

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.down:
            raise Unavailable("down")
        return self.jwks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_jwks_is_fetched_once_and_again_for_a_rotated_key() -> None:
    fetch, clock = FakeJwks(SIGNER), Clock()
    verifier = Verifier(ISSUER, KeySet(fetch, refetch_interval=1.0, clock=clock))
    for _ in range(5):
        await verifier.verify(SIGNER.mint(claims()), EVENT)
    assert fetch.calls == 1
    rotated = Signer(ec.generate_private_key(ec.SECP256R1()), ISSUER, [OLD_KEY.public_key()])
    fetch.jwks = rotated.jwks
    clock.now += 1.5
    assert await verifier.verify(rotated.mint(claims()), EVENT) == claims()
    assert fetch.calls == 2
    await verifier.verify(SIGNER.mint(claims()), EVENT)  # the retiring key is still listed
    assert fetch.calls == 2


async def test_made_up_kids_cannot_hammer_the_jwks() -> None:
    fetch, clock = FakeJwks(SIGNER), Clock()
    verifier = Verifier(ISSUER, KeySet(fetch, refetch_interval=1.0, clock=clock))
    await verifier.verify(SIGNER.mint(claims()), EVENT)
    for i in range(50):
        forged = unsigned({"alg": "EdDSA", "kid": f"made-up-{i}"}, claims().to_jwt(), b"x" * 64)
        with pytest.raises(TokenError):
            await verifier.verify(forged, EVENT)
    assert fetch.calls == 1  # all within one refetch interval of the first fetch
    clock.now += 1.5
    with pytest.raises(TokenError):
        await verifier.verify(unsigned({"alg": "EdDSA", "kid": "later"}, claims().to_jwt(), b"x" * 64), EVENT)
    assert fetch.calls == 2


async def test_an_unreachable_jwks_is_unavailable_not_invalid() -> None:
    fetch, clock = FakeJwks(SIGNER), Clock()
    fetch.down = True
    verifier = Verifier(ISSUER, KeySet(fetch, refetch_interval=1.0, clock=clock))
    for _ in range(3):
        with pytest.raises(Unavailable):
            await verifier.verify(SIGNER.mint(claims()), EVENT)
    assert fetch.calls == 1
    fetch.down = False
    clock.now += 1.5
    assert await verifier.verify(SIGNER.mint(claims()), EVENT) == claims()


def test_keys_the_gate_cannot_use_are_skipped() -> None:
    jwks = {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}, {"kid": 3}, *SIGNER.jwks["keys"]]}
    assert list(parse_jwks(jwks)) == [SIGNER.kid]
