"""The gate's only network calls: the JWKS, redemption and release, all to the waiting room."""

from __future__ import annotations

from typing import Any

import httpx

from waiting_room.core.tokens import TokenError

REFUSALS = {"invalid_token", "token_expired", "token_used"}


class Unavailable(Exception):
    """The waiting room could not be asked (down, timing out, 5xx): nothing was decided, nothing spent."""


class WaitingRoom:
    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None, timeout: float = 5.0) -> None:
        self.base_url = base_url
        self._client = client
        self._owned = client is None  # an operator's own client is theirs to close
        self._timeout = timeout

    def _http(self) -> httpx.AsyncClient:
        # made on first use, inside the server's event loop, never at import or wrap time
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        if self._owned and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self._http().request(method, self.base_url + path, json=body)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{method} {path}: {exc!r}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise Unavailable(f"{method} {path}: HTTP {response.status_code}")
        return response

    async def jwks(self) -> dict[str, Any]:
        response = await self._call("GET", "/.well-known/jwks.json")
        try:
            data = response.json()
        except ValueError:
            raise Unavailable("the JWKS is not JSON") from None
        if response.status_code != 200 or not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise Unavailable(f"no JWKS (HTTP {response.status_code})")
        return data

    async def redeem(self, token: str) -> float:
        """Spend the token; the session's expiry. Only a 200 spends it, so anything else may be retried."""
        response = await self._call("POST", "/api/redeem", {"token": token})
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code == 200 and isinstance(data, dict):
            expires = data.get("session_expires_at")
            if isinstance(expires, int | float) and not isinstance(expires, bool):
                return float(expires)
        error = data.get("error") if isinstance(data, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if response.status_code in (401, 409) and code in REFUSALS:
            raise TokenError(code, str(error.get("message") or code))  # type: ignore[union-attr]
        raise Unavailable(f"redeem answered HTTP {response.status_code}")

    async def release(self, token: str) -> None:
        """Free the session's capacity; `401 no_session` means it is already gone, which is as good."""
        response = await self._call("POST", "/api/sessions/release", {"token": token})
        if response.status_code not in (200, 204, 401):
            raise Unavailable(f"release answered HTTP {response.status_code}")
