"""The web process: `create_app(settings)` and the lifespan that owns its connections."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Lifespan

from waiting_room.core.proxies import TrustedProxies
from waiting_room.core.tokens import (
    PrivateKey,
    PublicKey,
    Signer,
    ensure_private_key,
    load_private_key,
    load_verify_key,
)
from waiting_room.settings import Settings
from waiting_room.store.bus import RedisBus
from waiting_room.store.events import Events
from waiting_room.store.loader import RedisLoader
from waiting_room.store.queue import Queue
from waiting_room.store.redis_client import check_url, connect, is_cluster, retry_policy
from waiting_room.store.scripts import Scripts
from waiting_room.store.sharded_pubsub import ShardedBus
from waiting_room.web import admin, admin_stream, openapi, pages, paths, public, ws
from waiting_room.web.errors import EXCEPTION_HANDLERS
from waiting_room.web.front import Front
from waiting_room.web.hub import Hub
from waiting_room.web.metrics import Metrics
from waiting_room.web.ratelimit import RateLimiter
from waiting_room.web.shed import Shed
from waiting_room.web.state import STATE_KEY, WebState

log = logging.getLogger(__name__)


def signer_for(settings: Settings) -> Signer:
    if settings.signing_key_path is not None:
        try:
            key = load_private_key(settings.signing_key_path)
        except OSError as exc:
            raise ValueError(f"WR_SIGNING_KEY: cannot read {settings.signing_key_path}: {exc.strerror}") from None
    else:
        path = settings.data_dir / "signing-key.pem"
        log.warning("WR_SIGNING_KEY is not set: signing with %s (every web process must share one key)", path)
        key = ensure_private_key(path)
    retiring: list[PrivateKey | PublicKey] = []
    for path in settings.verify_key_paths:
        try:
            retiring.append(load_verify_key(path))
        except OSError as exc:
            raise ValueError(f"WR_VERIFY_KEYS: cannot read {path}: {exc.strerror}") from None
    return Signer(key, settings.public_url, retiring)


def templates_for(settings: Settings) -> Jinja2Templates:
    """The built-in templates, overridden by name by those in WR_TEMPLATES_DIR; an override can still
    extend the original as "builtin/<name>" and replace only the blocks it wants."""
    builtin = jinja2.FileSystemLoader(str(paths.TEMPLATES))
    loaders: list[jinja2.BaseLoader] = [builtin, jinja2.PrefixLoader({"builtin": builtin})]
    if settings.templates_dir is not None:
        loaders.insert(0, jinja2.FileSystemLoader(str(settings.templates_dir)))
    return Jinja2Templates(env=jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True))


def create_app(settings: Settings) -> App:
    if not settings.redis_url:
        raise ValueError("WR_REDIS_URL is not set (only `waiting-room demo` starts its own Redis)")
    redis_url = settings.redis_url
    check_url(redis_url)
    signer = signer_for(settings)  # fail at start, not at the first admission

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        redis = connect(redis_url)
        bus_redis = connect(redis_url, socket_timeout=None, retry=retry_policy(0))
        scripts = Scripts.register(redis, settings.min_replicas)
        queue = Queue(redis, scripts, settings.public_url, tick_ms=settings.tick_ms)
        bus = ShardedBus(redis, bus_redis) if is_cluster(redis) else RedisBus(redis, bus_redis)
        hub = Hub(RedisLoader(redis, scripts), bus, signer, settings.tick_seconds)
        templates = templates_for(settings)
        limiter = RateLimiter(public.JOINS_PER_SECOND, public.JOIN_BURST)
        state = WebState(settings, redis, queue, Events(redis), signer, hub, templates, Metrics(hub), limiter)
        await hub.start()
        if not settings.admin_token:
            log.warning("WR_ADMIN_TOKEN is not set: every admin call is refused")
        try:
            yield {STATE_KEY: state}
        finally:
            await hub.stop()
            await redis.aclose()
            await bus_redis.aclose()

    routes = [
        *public.routes,
        *openapi.routes,
        *ws.routes,
        *admin.routes,
        *admin_stream.routes,
        *pages.routes,
        Mount("/static", StaticFiles(directory=str(paths.STATIC)), name="static"),
    ]
    return App(routes, lifespan, TrustedProxies(settings.trusted_proxies))


class App(Starlette):
    """Starlette's router with one layer of ours in front (web.front) in place of its error and exception
    middlewares and any added ones: every request crosses it, and each layer was a closure around `send`."""

    def __init__(self, routes: list[BaseRoute], lifespan: Lifespan[Starlette], proxies: TrustedProxies) -> None:
        super().__init__(routes=routes, lifespan=lifespan)  # its exception handlers: the front's
        self.proxies = proxies
        self.shed = Shed()

    def build_middleware_stack(self) -> ASGIApp:
        return Front(self.router, self.proxies, self.shed, EXCEPTION_HANDLERS)
