"""Process settings, read once from the environment (12-factor).

Every WR_* variable of the contract is read here and nowhere else, so that a
typo in a name is one place to look and secrets never reach a log: the admin
token is hidden from ``repr``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class SettingsError(ValueError):
    """A WR_* variable holds a value the process cannot run with."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    signing_key_path: Path | None
    admin_token: str = field(repr=False)
    tick_ms: int = 500
    public_url: str = DEFAULT_PUBLIC_URL
    allowed_origins: frozenset[str] = frozenset()
    data_dir: Path = Path(".waiting-room")
    # retiring keys during a rotation: still in the JWKS and still accepted at redemption
    verify_key_paths: tuple[Path, ...] = ()
    web_workers: int = 1  # processes `waiting-room web` runs on one port
    # whose X-Forwarded-For names the client (per-client limits, logs): core.proxies
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    templates_dir: Path | None = None  # a shop's templates, overriding the built-in ones by name
    min_replicas: int = 0  # WAIT for this many replicas before acknowledging a join, admission or redemption

    @property
    def tick_seconds(self) -> float:
        return self.tick_ms / 1000

    def origin_allowed(self, origin: str | None) -> bool:
        """Browsers always send Origin on a WebSocket; other clients (apps, tests) may not."""
        return origin is None or origin.rstrip("/") in self.allowed_origins

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        public_url = env.get("WR_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"WR_PUBLIC_URL must be an http(s) URL, got {public_url!r}")
        tick = env.get("WR_TICK_MS", "500")
        try:
            tick_ms = int(tick)
        except ValueError:
            raise SettingsError(f"WR_TICK_MS must be an integer, got {tick!r}") from None
        if not 10 <= tick_ms <= 10_000:
            raise SettingsError(f"WR_TICK_MS must be between 10 and 10000, got {tick_ms}")
        origins = env.get("WR_ALLOWED_ORIGINS", "")
        allowed = {o.strip().rstrip("/") for o in origins.split(",") if o.strip()} or {origin_of(public_url)}
        replicas = env.get("WR_REDIS_MIN_REPLICAS", "0") or "0"
        if not replicas.isdigit() or int(replicas) > 16:
            raise SettingsError(f"WR_REDIS_MIN_REPLICAS must be an integer from 0 to 16, got {replicas!r}")
        key = env.get("WR_SIGNING_KEY")
        verify_keys = tuple(Path(p.strip()) for p in env.get("WR_VERIFY_KEYS", "").split(",") if p.strip())
        templates = env.get("WR_TEMPLATES_DIR") or None
        if templates is not None and not Path(templates).is_dir():
            raise SettingsError(f"WR_TEMPLATES_DIR must be a folder of templates, got {templates!r}")
        return cls(
            redis_url=env.get("WR_REDIS_URL") or None,
            signing_key_path=Path(key) if key else None,
            admin_token=env.get("WR_ADMIN_TOKEN", ""),
            tick_ms=tick_ms,
            public_url=public_url,
            allowed_origins=frozenset(allowed),
            data_dir=Path(env.get("WR_DATA_DIR", ".waiting-room")),
            verify_key_paths=verify_keys,
            web_workers=parse_workers(env.get("WR_WEB_WORKERS") or "1", "WR_WEB_WORKERS"),
            trusted_proxies=trusted_proxies(env.get("WR_TRUSTED_PROXIES", "127.0.0.1")),
            templates_dir=Path(templates) if templates else None,
            min_replicas=int(replicas),
        )


def trusted_proxies(value: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDRs (or `*`: every peer is a proxy); empty trusts nobody."""
    found = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        if part == "*":
            found.append(part)
            continue
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise SettingsError(f"WR_TRUSTED_PROXIES: {part!r} is not an address or CIDR") from None
        # normalised: uvicorn takes "10.0.0.7/8" (host bits set) for a literal name, trusting nobody
        found.append(str(network) if "/" in part else str(network.network_address))
    return tuple(found)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


MAX_WEB_WORKERS = 64


def parse_workers(value: str, name: str) -> int:
    try:
        workers = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {value!r}") from None
    if not 1 <= workers <= MAX_WEB_WORKERS:
        raise SettingsError(f"{name} must be between 1 and {MAX_WEB_WORKERS}, got {workers}")
    return workers
