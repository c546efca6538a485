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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
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


def _algorithm(key: PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    return "RS256"


def _public_jwk(key: PrivateKey) -> dict[str, Any]:
    public = key.public_key()
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


class Signer:
    """Mints and verifies admission tokens with one private key."""

    def __init__(self, key: PrivateKey, issuer: str) -> None:
        self._key = key
        self.issuer = issuer
        self.algorithm = _algorithm(key)
        jwk = _public_jwk(key)
        self.kid = _thumbprint(jwk)
        self._public = key.public_key()
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}]}

    def mint(self, claims: Claims) -> str:
        return jwt.encode(claims.to_jwt(), self._key, algorithm=self.algorithm, headers={"kid": self.kid})

    def verify(self, token: object, *, expired_ok: bool = False) -> Claims:
        """Signature, expiry and issuer; the audience (event) is checked by the caller against its record.

        `expired_ok`: for releasing a session, which outlives the token that opened it."""
        # a JWT is base64url and dots: anything else (a lone surrogate, say) fails before PyJWT sees it
        if not isinstance(token, str) or not token or len(token) > 4096 or not token.isascii():
            raise TokenError("invalid_token", "the token is missing or malformed")
        try:
            data = jwt.decode(
                token,
                self._public,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                # iat is when Redis admitted the ticket: a web process whose clock lags a little
                # must not refuse a fresh token as "issued in the future"
                options={
                    "verify_exp": not expired_ok,
                    "verify_aud": False,
                    "verify_iat": False,
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
