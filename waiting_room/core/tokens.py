"""Admission tokens: JWTs any backend verifies offline against our JWKS.

The claims are derived from the ticket's record (jti, admission time,
expiry), and Ed25519 signatures are deterministic, so every web process
mints the very same token for a ticket: the socket and the status call
agree, and nothing about tokens is stored. Single use is enforced at
redemption by the ticket's state, not by remembering tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from waiting_room.core.tickets import Admission

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
LEEWAY_SECONDS = 0


class TokenError(Exception):
    """A token that must be refused; `code` is the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Claims:
    """What an admission token says."""

    issuer: str
    event: str
    ticket: str
    jti: str
    issued_at: int
    expires_at: int

    @classmethod
    def of(cls, issuer: str, event: str, ticket: str, admission: Admission) -> Claims:
        """What an admission's token says. One rounding of the scripts' milliseconds, used by every path
        (status, socket connect, the `advance` fan-out), so every process mints the same token."""
        return cls(
            issuer=issuer,
            event=event,
            ticket=ticket,
            jti=admission.jti,
            issued_at=admission.admitted_ms // 1000,
            expires_at=admission.expires_ms // 1000,
        )

    def to_jwt(self) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "aud": self.event,
            "sub": self.ticket,
            "jti": self.jti,
            "iat": self.issued_at,
            "exp": self.expires_at,
        }

    @classmethod
    def from_jwt(cls, data: dict[str, Any]) -> Claims:
        try:
            return cls(
                issuer=str(data["iss"]),
                event=str(data["aud"]),
                ticket=str(data["sub"]),
                jti=str(data["jti"]),
                issued_at=int(data["iat"]),
                expires_at=int(data["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            raise TokenError("invalid_token", "the token lacks a required claim") from None


def _public(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return key.public_key()
    return key


def _algorithm(key: PrivateKey | PublicKey) -> str:
    public = _public(key)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[public.curve.name]
    return "RS256"


def _public_jwk(key: PrivateKey | PublicKey) -> dict[str, Any]:
    public = _public(key)
    if isinstance(public, ed25519.Ed25519PublicKey):
        jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(public))
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = json.loads(ECAlgorithm.to_jwk(public))
    else:
        jwk = json.loads(RSAAlgorithm.to_jwk(public))
    return jwk


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: the hash of the required members, so the kid follows the key."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class _VerifyKey:
    kid: str
    algorithm: str
    public: PublicKey
    jwk: dict[str, Any]


def _verify_key(key: PrivateKey | PublicKey) -> _VerifyKey:
    jwk = _public_jwk(key)
    kid = _thumbprint(jwk)
    algorithm = _algorithm(key)
    return _VerifyKey(kid, algorithm, _public(key), {**jwk, "kid": kid, "use": "sig", "alg": algorithm})


class Signer:
    """Mints admission tokens with one private key and verifies them with it or any retiring key.

    Key rotation: the new key signs, and the old ones (`retiring`) stay in the JWKS and keep
    verifying, so a token minted just before the switch still redeems; once every such token has
    expired the operator drops them.
    """

    def __init__(self, key: PrivateKey, issuer: str, retiring: Sequence[PrivateKey | PublicKey] = ()) -> None:
        self._key = key
        self.issuer = issuer
        signing = _verify_key(key)
        self.algorithm = signing.algorithm
        self.kid = signing.kid
        self._keys: dict[str, _VerifyKey] = {signing.kid: signing}
        for old in retiring:
            found = _verify_key(old)
            self._keys.setdefault(found.kid, found)
        self.jwks = {"keys": [k.jwk for k in self._keys.values()]}

    def mint(self, claims: Claims) -> str:
        return jwt.encode(claims.to_jwt(), self._key, algorithm=self.algorithm, headers={"kid": self.kid})

    def verify(self, token: object, *, allow_expired: bool = False) -> Claims:
        """Signature, expiry and issuer; the audience (event) is checked by the caller against its record.

        `allow_expired` serves release: a session outlives the token that opened it.
        """
        # a JWT is base64url and dots: anything else (a lone surrogate, say) fails before PyJWT sees it
        if not isinstance(token, str) or not token or len(token) > 4096 or not token.isascii():
            raise TokenError("invalid_token", "the token is missing or malformed")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise TokenError("invalid_token", "the token is signed by a key this waiting room does not hold")
            data = jwt.decode(
                token,
                key.public,
                algorithms=[key.algorithm],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                # iat is when Redis admitted the ticket: a web process whose clock lags a little
                # must not refuse a fresh token as "issued in the future"
                options={
                    "verify_aud": False,
                    "verify_iat": False,
                    "verify_exp": not allow_expired,
                    "require": ["exp", "iat", "aud", "sub", "jti", "iss"],
                },
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired", "the admission token has expired") from None
        except jwt.PyJWTError:
            raise TokenError("invalid_token", "the token's signature or claims are not valid") from None
        return Claims.from_jwt(data)


def load_private_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: the signing key must be Ed25519, EC or RSA")
    return key


def load_verify_key(path: Path) -> PrivateKey | PublicKey:
    """A retiring key: its private PEM (simply the old WR_SIGNING_KEY file) or only its public PEM."""
    pem = path.read_bytes()
    if b"PRIVATE KEY" in pem:
        return load_private_key(path)
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise ValueError(f"{path}: a verification key must be Ed25519, EC or RSA")
    return key


def ensure_private_key(path: Path) -> PrivateKey:
    """Load the key at `path`, generating an Ed25519 key there first if there is none (demo)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    return load_private_key(path)
