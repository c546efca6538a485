"""Offline verification of admission tokens against the waiting room's JWKS.

Only asymmetric algorithms are accepted and the header's `alg` must be the
key's own, so neither `alg: none` nor an HMAC keyed with the public key can
pass. The JWKS is fetched once and again on an unknown `kid` (a rotated
key), but at most once per `refetch_interval`, so tokens with made-up kids
cannot turn into a stream of requests to the waiting room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from waiting_room.core.tokens import Claims, TokenError
from waiting_room.gate.upstream import Unavailable

ALGORITHMS = frozenset({"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
MAX_TOKEN = 4096
REQUIRED = ["iss", "aud", "sub", "jti", "iat", "exp"]


def header_of(token: str) -> tuple[str, str | None]:
    """The token's (alg, kid), refusing anything that is not one of our asymmetric JWTs."""
    if not token or len(token) > MAX_TOKEN:
        raise TokenError("invalid_token", "the token is missing or malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("invalid_token", "the token is not a JWT") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise TokenError("invalid_token", f"the token's algorithm {str(alg)[:20]!r} is not accepted")
    return alg, kid if isinstance(kid, str) else None


def check(token: str, key: jwt.PyJWK, issuer: str, event: str) -> Claims:
    """Signature, issuer, audience (= the guarded event) and expiry."""
    alg, _ = header_of(token)
    if key.algorithm_name != alg:
        raise TokenError("invalid_token", "the token's algorithm does not match its key")
    try:
        data = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=event,
            issuer=issuer,
            # iat is the waiting room's Redis time: a gate whose clock lags must not refuse a fresh token
            options={"require": REQUIRED, "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "the admission token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError("invalid_token", "the token admits to another event") from None
    except jwt.PyJWTError:
        raise TokenError("invalid_token", "the token's signature or claims are not valid") from None
    return Claims.from_jwt(data)


def parse_jwks(data: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    for entry in data.get("keys", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue  # a key type we do not use; the others still count
        if key.algorithm_name in ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


class KeySet:
    def __init__(
        self,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        refetch_interval: float = 1.0,
        max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _fresh(self) -> bool:
        return self._keys is not None and self._clock() - self._fetched_at < self._max_age

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for `kid`, or None if the waiting room does not (or, rate-limited, did not lately) list it."""
        if kid is None:
            return None
        if self._fresh() and kid in self._keys:  # type: ignore[operator]
            return self._keys[kid]  # type: ignore[index]
        async with self._lock:
            if self._keys is not None and kid in self._keys and self._fresh():
                return self._keys[kid]  # fetched by a request we waited behind
            recent = self._attempted_at is not None and self._clock() - self._attempted_at < self._refetch_interval
            if recent:
                if self._keys is None:
                    raise Unavailable("the JWKS could not be fetched moments ago")
                return self._keys.get(kid)
            self._attempted_at = self._clock()
            self.fetches += 1
            try:
                data = await self._fetch()
            except Unavailable:
                if self._keys is not None and kid in self._keys:
                    return self._keys[kid]  # stale but known: better than refusing during an outage
                raise
            self._keys = parse_jwks(data)
            self._fetched_at = self._clock()
            return self._keys.get(kid)


class Verifier:
    def __init__(self, issuer: str, keys: KeySet) -> None:
        self.issuer = issuer
        self.keys = keys

    async def verify(self, token: str, event: str) -> Claims:
        _, kid = header_of(token)
        key = await self.keys.key(kid)
        if key is None:
            raise TokenError("invalid_token", "the token is signed by a key the waiting room does not list")
        return check(token, key, self.issuer, event)
