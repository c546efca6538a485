"""The gate's own session: an HMAC-signed cookie, one per event, checked with no network call.

It carries the redeemed token so that release can tell the waiting room
which session ends; the token is spent, so holding it grants nothing more.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
from dataclasses import dataclass

COOKIE_PREFIX = "wr_gate_"
MIN_SECRET_BYTES = 16
VERIFIED_CACHE = 4096
_CONTEXT = b"waiting-room gate session v1\x00"


def cookie_name(event: str) -> str:
    return COOKIE_PREFIX + event


@dataclass(frozen=True)
class GateSession:
    event: str
    expires_at: float
    token: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"the gate's secret must be at least {MIN_SECRET_BYTES} bytes")
        self._key = key
        # a session is checked on every request it makes: the signature once per cookie value is enough
        self._verified: dict[str, GateSession] = {}

    def _mac(self, payload: str) -> str:
        return _b64(hmac.digest(self._key, _CONTEXT + payload.encode(), "sha256"))

    def encode(self, session: GateSession) -> str:
        payload = _b64(json.dumps({"e": session.event, "x": session.expires_at, "t": session.token}).encode())
        return f"{payload}.{self._mac(payload)}"

    def decode(self, value: str | None, now: float | None = None) -> GateSession | None:
        """The session a cookie value holds if its signature is ours (and, given `now`, it is still live)."""
        if not value:
            return None
        session = self._verified.get(value)
        if session is None:
            session = self._verify(value)
            if session is None:
                return None
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[value] = session
        if now is not None and not session.expires_at > now:
            return None
        return session

    def _verify(self, value: str) -> GateSession | None:
        if not value.isascii() or value.count(".") != 1 or len(value) > 8192:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            return GateSession(str(data["e"]), float(data["x"]), str(data["t"]))
        except (ValueError, KeyError, TypeError):
            return None


def set_cookie(name: str, value: str, max_age: float, secure: bool) -> bytes:
    return _cookie(f"{name}={value}; Path=/; Max-Age={max(0, math.ceil(max_age))}", secure)


def delete_cookie(name: str, secure: bool) -> bytes:
    return _cookie(f"{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT", secure)


def _cookie(head: str, secure: bool) -> bytes:
    return (head + "; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")).encode("latin-1")


def parse_cookies(header: str) -> dict[str, str]:
    """Lenient on purpose: one malformed cookie of the app's must not hide ours."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies
