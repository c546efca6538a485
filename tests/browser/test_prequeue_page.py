"""The pre-queue on the page: a countdown to the opening, then a real place in line."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.cluster import Cluster

from .helpers import open_waiting_page, shown_position, t, wait_position

pytestmark = pytest.mark.browser


def test_early_arrivals_see_a_countdown_then_their_place(shared_cluster: Cluster, event: str, page: Any) -> None:
    opens_in = 6.0
    shared_cluster.put_event(event, opens_at=time.time() + opens_in, rate_per_minute=1)
    joined = open_waiting_page(page, event)
    assert joined["state"] == "pre_queue" and joined["position"] is None

    countdown = page.locator("#pre-countdown")
    countdown.wait_for(state="visible")
    prefix = t("js_pre_queue").split("{countdown}")[0]
    assert (countdown.text_content() or "").startswith(prefix), countdown.text_content()
    assert page.locator("#panel-queue").is_hidden(), "no place is shown before the opening"

    # at the opening the shuffled order is fixed and the page shows a real place
    place = wait_position(page, lambda p: p >= 1, "a place in line after the opening")
    assert place == shown_position(page)
    assert page.locator("#panel-pre").is_hidden()
    assert shared_cluster.ticket(joined["ticket"])["state"] in ("waiting", "admitted")
