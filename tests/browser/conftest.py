"""Headless Chromium (Debian's, never a downloaded one) driving the real product processes.

Each test module gets its own cluster (redis-server, one `waiting-room web`,
one `waiting-room promoter`) from `support.cluster`; each test gets a fresh
browser context (its own cookies, so its own ticket) and its own event.
Without a Chromium binary the tests skip, saying why; with
WR_REQUIRE_BROWSER=1 (CI) they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
from support.cluster import Cluster

from .helpers import PAGE_TIMEOUT_MS

TICK_MS = 200
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    found = os.environ.get("WR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return found if os.access(found, os.X_OK) else None


def _unavailable(reason: str) -> None:
    if os.environ.get("WR_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} and WR_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(reason)


# package scope: while Playwright's sync API is open it keeps an event loop running, which
# would break every asyncio test collected after this package
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _unavailable("headless Chromium not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Cluster]:
    """One web process and one promoter for the module (named so the root conftest shows their logs on failure).

    Depends on `browser` so that a missing Chromium skips before any process starts.
    """
    cluster = Cluster(tmp_path_factory.mktemp("browser-cluster"), webs=1, promoters=1)
    cluster.env["WR_TICK_MS"] = str(TICK_MS)
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.fixture
def event(shared_cluster: Cluster) -> str:
    return f"b-{uuid4().hex[:10]}"


@pytest.fixture
def new_page(browser: Any, shared_cluster: Cluster) -> Iterator[Callable[..., Any]]:
    """Pages in fresh contexts (one visitor each) with the cluster's URL as base; closed after the test."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("base_url", shared_cluster.url(""))
        options.setdefault("locale", "en-US")
        context = browser.new_context(**options)
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.wr_sockets = []  # every WebSocket URL the page opened, in order
        page.on("websocket", lambda ws: page.wr_sockets.append(ws.url))
        return page

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()
