"""Admission tokens: minting, offline verification with standard JWT tooling, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import stat
import string
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from waiting_room.core.tokens import (
    Claims,
    PrivateKey,
    Signer,
    TokenError,
    _thumbprint,
    ensure_private_key,
    load_private_key,
    load_verify_key,
)

ISSUER = "https://wr.example"
KEYS: dict[str, PrivateKey] = {
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
REQUIRED = ("iss", "aud", "sub", "jti", "iat", "exp")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims(expires_in: int = 300, **changes: Any) -> Claims:
    now = int(time.time())
    fields: dict[str, Any] = {
        "issuer": ISSUER,
        "event": "demo",
        "ticket": "demo." + "A" * 24,
        "jti": "j-1",
        "issued_at": now,
        "expires_at": now + expires_in,
    }
    return Claims(**{**fields, **changes})


@pytest.fixture(params=list(KEYS))
def key(request: pytest.FixtureRequest) -> PrivateKey:
    return KEYS[request.param]


@pytest.fixture
def signer(key: PrivateKey) -> Signer:
    return Signer(key, ISSUER)


def refused(signer: Signer, token: object, code: str = "invalid_token") -> None:
    with pytest.raises(TokenError) as caught:
        signer.verify(token)
    assert caught.value.code == code


@pytest.mark.parametrize(("algorithm", "key"), KEYS.items())
def test_algorithm_follows_the_key(algorithm: str, key: PrivateKey) -> None:
    signer = Signer(key, ISSUER)
    assert signer.algorithm == signer.jwks["keys"][0]["alg"] == algorithm
    assert jwt.get_unverified_header(signer.mint(claims()))["alg"] == algorithm


def test_round_trip(signer: Signer) -> None:
    minted = claims()
    assert signer.verify(signer.mint(minted)) == minted


def test_kid_is_the_rfc7638_thumbprint(signer: Signer) -> None:
    jwk = signer.jwks["keys"][0]
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = "{" + ",".join(f'"{k}":"{jwk[k]}"' for k in required) + "}"
    assert signer.kid == b64(hashlib.sha256(canonical.encode()).digest())
    assert jwk["kid"] == signer.kid == jwt.get_unverified_header(signer.mint(claims()))["kid"]


def test_thumbprint_matches_rfc7638_example() -> None:
    """RFC 7638 §3.1 (the RSA key of RFC 7517 A.1); members beyond the required ones do not count."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXj"
        "BZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSq"
        "zs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHa"
        "Q-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert _thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ed25519_kid_matches_rfc8037_example() -> None:
    """RFC 8037 A.1-A.3: the Ed25519 key and its thumbprint."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"))
    signer = Signer(key, ISSUER)
    assert signer.jwks["keys"][0]["x"] == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert signer.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_backend_verifies_offline_with_the_jwks(signer: Signer) -> None:
    """What any backend does: pick the key by kid from the JWKS, check signature, exp, aud and iss."""
    published = json.loads(json.dumps(signer.jwks))
    token = signer.mint(claims())
    key = jwt.PyJWKSet.from_dict(published)[jwt.get_unverified_header(token)["kid"]]
    data = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="demo", issuer=ISSUER)
    assert data["sub"] == "demo." + "A" * 24 and set(data) == set(REQUIRED)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="other", issuer=ISSUER)


def test_ed25519_tokens_are_deterministic() -> None:
    """Every web process mints the same token for a ticket, so nothing about tokens is stored."""
    key = KEYS["EdDSA"]
    minted = claims()
    first = Signer(key, ISSUER).mint(minted)
    assert Signer(key, ISSUER).mint(minted) == first
    assert Signer(key, ISSUER).mint(claims(jti="j-2")) != first


def test_tampered_payload_is_refused(signer: Signer) -> None:
    header, payload, signature = signer.mint(claims()).split(".")
    data = json.loads(unb64(payload))
    for name, value in [("sub", "demo." + "B" * 24), ("exp", data["exp"] + 3600), ("aud", "other")]:
        forged = b64(json.dumps({**data, name: value}).encode())
        refused(signer, f"{header}.{forged}.{signature}")


def test_tampered_signature_or_header_is_refused(signer: Signer) -> None:
    header, payload, signature = signer.mint(claims()).split(".")
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2] ^= 1
    refused(signer, f"{header}.{payload}.{b64(bytes(raw))}")
    refused(signer, f"{header}.{payload}.")
    for alg in ("none", "HS256", "RS256" if signer.algorithm != "RS256" else "EdDSA"):
        forged = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": signer.kid}).encode())
        refused(signer, f"{forged}.{payload}.{signature}")


def test_another_key_is_refused_even_with_our_kid(key: PrivateKey, signer: Signer) -> None:
    for other in (ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1()), KEYS["RS256"]):
        if other is key:
            continue
        algorithm = Signer(other, ISSUER).algorithm
        token = jwt.encode(claims().to_jwt(), other, algorithm=algorithm, headers={"kid": signer.kid})
        refused(signer, token)


def test_hs256_with_the_public_key_as_secret_is_refused(key: PrivateKey, signer: Signer) -> None:
    """The classic algorithm confusion: HMAC keyed with the published public key."""
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": signer.kid}).encode())
    payload = b64(json.dumps(claims().to_jwt()).encode())
    mac = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    refused(signer, f"{header}.{payload}.{b64(mac)}")


def test_expired_token(signer: Signer) -> None:
    refused(signer, signer.mint(claims(expires_in=-1)), "token_expired")
    refused(signer, signer.mint(claims(expires_in=-3600)), "token_expired")


def test_wrong_issuer(key: PrivateKey, signer: Signer) -> None:
    refused(signer, Signer(key, "https://elsewhere.example").mint(claims(issuer="https://elsewhere.example")))


@pytest.mark.parametrize("missing", REQUIRED)
def test_a_missing_claim_is_refused(key: PrivateKey, signer: Signer, missing: str) -> None:
    data = {k: v for k, v in claims().to_jwt().items() if k != missing}
    token = jwt.encode(data, key, algorithm=signer.algorithm, headers={"kid": signer.kid})
    refused(signer, token)


@pytest.mark.parametrize(
    "token", [None, 0, 123, 1.5, True, b"a.b.c", ["a.b.c"], {"token": "a.b.c"}, "", "a.b.c", "...", "é.é.é"]
)
def test_malformed_input_is_refused(signer: Signer, token: object) -> None:
    refused(signer, token)


def test_huge_input_is_refused_before_decoding(signer: Signer) -> None:
    refused(signer, "a" * 5000)
    huge = signer.mint(claims(ticket="demo." + "A" * 5000))  # correctly signed, but no token is that big
    refused(signer, huge)


def test_junk_only_ever_raises_token_error(signer: Signer) -> None:
    rng = random.Random(5)
    good = signer.mint(claims()).split(".")
    pieces = [
        b64(b"{}"),
        b64(b"[]"),
        b64(b"null"),
        b64(b'{"alg":"EdDSA"}'),
        b64(b'{"alg":["EdDSA"]}'),
        b64(b'{"alg":"EdDSA","kid":{}}'),
        b64(b'{"alg":"EdDSA","b64":false,"crit":["b64"]}'),
        b64(b'{"exp":"soon"}'),
        b64(b'{"exp":1e400}'),
        b64(b'{"exp":NaN}'),
        b64(b"\xff\xfe"),
        "!!",
        "=",
        "",
        *good,
    ]
    for _ in range(3000):
        parts = [rng.choice(pieces) for _ in range(rng.choice([1, 2, 3, 3, 3, 4]))]
        if rng.random() < 0.2:
            parts.append("".join(rng.choices(string.printable, k=rng.randrange(20))))
        token = ".".join(parts)
        if token == ".".join(good):
            continue
        with pytest.raises(TokenError):
            signer.verify(token)


def test_claims_from_jwt_requires_every_claim() -> None:
    data = claims().to_jwt()
    assert Claims.from_jwt(data) == Claims.from_jwt(dict(data))
    for missing in REQUIRED:
        with pytest.raises(TokenError) as caught:
            Claims.from_jwt({k: v for k, v in data.items() if k != missing})
        assert caught.value.code == "invalid_token"
    with pytest.raises(TokenError):
        Claims.from_jwt({**data, "exp": "tomorrow"})


def test_ensure_private_key_generates_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = ensure_private_key(path)
    assert isinstance(first, ed25519.Ed25519PrivateKey)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = ensure_private_key(path)
    assert Signer(again, ISSUER).kid == Signer(first, ISSUER).kid


@pytest.mark.parametrize("algorithm", list(KEYS))
def test_load_private_key_reads_pem(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "key.pem"
    key = KEYS[algorithm]
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    assert Signer(load_private_key(path), ISSUER).kid == Signer(key, ISSUER).kid


def test_load_private_key_refuses_a_key_that_cannot_sign(tmp_path: Path) -> None:
    path = tmp_path / "x25519.pem"
    path.write_bytes(
        x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValueError, match="Ed25519, EC or RSA"):
        load_private_key(path)


# --- key rotation ------------------------------------------------------------


def test_a_retiring_key_still_verifies_and_stays_in_the_jwks() -> None:
    old, new = ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())
    minted = claims()
    in_flight = Signer(old, ISSUER).mint(minted)
    rotated = Signer(new, ISSUER, [old.public_key()])
    assert rotated.verify(in_flight) == minted
    assert [k["kid"] for k in rotated.jwks["keys"]] == [rotated.kid, Signer(old, ISSUER).kid]
    assert jwt.get_unverified_header(rotated.mint(claims()))["kid"] == rotated.kid
    with pytest.raises(TokenError) as refused:
        Signer(new, ISSUER).verify(in_flight)  # retired: removed from the list
    assert refused.value.code == "invalid_token"


def test_a_token_naming_a_known_kid_but_signed_by_another_key_is_refused() -> None:
    signer = Signer(KEYS["EdDSA"], ISSUER)
    forged = jwt.encode(
        claims().to_jwt(), ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": signer.kid}
    )
    with pytest.raises(TokenError):
        signer.verify(forged)


def test_release_may_verify_an_expired_token_but_redemption_may_not() -> None:
    signer = Signer(KEYS["EdDSA"], ISSUER)
    token = signer.mint(claims(expires_in=-10))
    with pytest.raises(TokenError) as refused:
        signer.verify(token)
    assert refused.value.code == "token_expired"
    assert signer.verify(token, allow_expired=True).event == "demo"


def test_verify_keys_load_from_a_private_or_a_public_pem(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    private = tmp_path / "old.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = tmp_path / "old.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    kid = Signer(key, ISSUER).kid
    for path in (private, public):
        assert Signer(KEYS["ES256"], ISSUER, [load_verify_key(path)]).jwks["keys"][1]["kid"] == kid
