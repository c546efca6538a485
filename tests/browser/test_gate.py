"""The gate as a browser lives it: a protected app on another origin, the line, and back with a session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.cluster import Cluster
from support.gated import ProtectedApp, protected_app

from .helpers import PAGE_TIMEOUT_MS, history_urls

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]


@pytest.fixture(scope="module")
def shop(shared_cluster: Cluster) -> Iterator[ProtectedApp]:
    with protected_app(shared_cluster.root, shared_cluster.public_url, shared_cluster.env) as app:
        yield app


def test_through_the_line_to_the_protected_app_and_out_again(
    shared_cluster: Cluster, shop: ProtectedApp, event: str, page: Any
) -> None:
    target = f"{shop.base}/guarded/{event}/checkout"
    shared_cluster.put_event(event, target_url=target, max_active=1)

    page.goto(target)  # no session: the gate sends the browser to the line
    page.wait_for_url(f"{shared_cluster.public_url}/e/{event}")
    page.wait_for_url(target, timeout=PAGE_TIMEOUT_MS)  # admitted: the page posts the token, the gate redeems it
    shown = json.loads(page.locator("body").inner_text())
    assert shown["app"] == "protected" and shown["method"] == "GET" and shown["path"] == f"/guarded/{event}/checkout"
    assert not [url for url in history_urls(page) if "token" in url]
    cookies = {c["name"]: c for c in page.context.cookies(shop.base)}
    session = cookies[f"wr_gate_{event}"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert shared_cluster.stats(event)["active"] == 1

    page.reload()  # the session lets the browser straight through
    assert page.url == target and json.loads(page.locator("body").inner_text())["app"] == "protected"

    status = page.evaluate("fetch('/.waiting-room/release', {method: 'POST'}).then(r => r.status)")
    assert status == 204
    assert shared_cluster.stats(event)["active"] == 0
    assert f"wr_gate_{event}" not in {c["name"] for c in page.context.cookies(shop.base)}
    page.goto(target)
    page.wait_for_url(f"{shared_cluster.public_url}/e/{event}")
