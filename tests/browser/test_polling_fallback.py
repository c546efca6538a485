"""A browser that cannot open a WebSocket at all (a proxy that blocks them) still gets through:
the page falls back to polling the ticket's status, and admission still leads to the order page."""

from __future__ import annotations

from typing import Any

import pytest
from support.cluster import Cluster

from .helpers import crowd, open_waiting_page, t, wait_position

pytestmark = pytest.mark.browser

NO_WEBSOCKETS = """
window.WebSocket = class {
  constructor() { throw new DOMException("blocked by a proxy", "SecurityError"); }
};
"""


def test_without_websockets_the_page_polls_and_still_gets_through(
    shared_cluster: Cluster, event: str, page: Any
) -> None:
    shared_cluster.put_event(event, status="paused", rate_per_minute=600)
    crowd(shared_cluster, event, 3)
    page.add_init_script(NO_WEBSOCKETS)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/api/tickets/" in r.url else None)

    joined = open_waiting_page(page, event)
    page.wait_for_function(
        "text => document.getElementById('conn-text').textContent === text", arg=t("js_conn_polling")
    )
    assert wait_position(page, lambda p: p == 4, "the place, learnt by polling") == 4
    assert any(joined["ticket"] in url for url in polls)

    shared_cluster.set_status(event, "open")
    page.wait_for_url(f"**/order/{event}", timeout=60_000)
    assert "token" not in page.url
    assert page.locator("form[action$='/complete'], button").count() > 0
    assert page.locator("#position").count() == 0  # the waiting page is gone
