"""/admin in headless Chromium against a real web process, promoter and redis-server.

What tests/browser/test_dashboard.py (sign-in, the observed rate following a
change, notices reaching a waiting page, closing) leaves out: numbers moving
by push, a refused value shown in words, the confirmation dialog giving focus
back, creating an event, and the token kept for the tab until a 401.
Skips (saying why) without /usr/bin/chromium, unless WR_REQUIRE_BROWSER is
set, as in CI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from support.cluster import Cluster, running

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("admin-page"), webs=1, promoters=1) as made:
        yield made


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def sign_in(page: Page, cluster: Cluster) -> None:
    page.goto(cluster.url("/admin"))
    page.get_by_label("Admin token").fill(cluster.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live")).to_have_attribute("data-state", "ok")


def card(page: Page, event: str) -> Any:
    return page.locator(f"article.card[data-event='{event}']")


def test_the_numbers_move_and_the_rate_changes_live(page: Page, cluster: Cluster) -> None:
    cluster.put_event("moving", title="Moving line", rate_per_minute=60)
    for _ in range(40):
        cluster.join("moving")
    sign_in(page, cluster)
    served = card(page, "moving").locator(".n-served")
    expect(served).to_have_text(re.compile(r"^[0-9,]+$"))
    before = int(served.inner_text().replace(",", ""))
    expect(served).not_to_have_text(str(before))  # pushed, not reloaded

    rate = card(page, "moving").get_by_label("Admissions per minute")
    rate.fill("600")
    card(page, "moving").get_by_role("button", name="Apply changes").click()
    expect(card(page, "moving").locator(".c-result")).to_have_text("Saved: rate 600.")
    assert cluster.stats("moving")["rate_per_minute"] == 600
    expect(card(page, "moving").locator(".n-rate")).to_contain_text("· 600 set")

    rate.fill("0")
    card(page, "moving").get_by_role("button", name="Apply changes").click()
    expect(card(page, "moving").locator(".c-result")).to_have_text("rate_per_minute must be between 1 and 1000000")


def test_a_destructive_status_asks_first(page: Page, cluster: Cluster) -> None:
    cluster.put_event("ending", title="Ending")
    sign_in(page, cluster)
    closing = card(page, "ending").get_by_role("button", name="Close…")
    closing.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Close “Ending”?")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(closing).to_be_focused()
    assert cluster.stats("ending")["status"] == "open"

    closing.click()
    dialog.get_by_role("button", name="Yes, close the event").click()
    expect(card(page, "ending").locator(".c-status")).to_have_text("Closed")
    expect(card(page, "ending").locator(".c-result")).to_contain_text("Every waiting browser has been told.")
    assert cluster.stats("ending")["status"] == "closed"
    card(page, "ending").get_by_role("button", name="Open").click()
    expect(card(page, "ending").locator(".c-status")).to_have_text("Open")


def test_creating_an_event_adds_its_card(page: Page, cluster: Cluster) -> None:
    sign_in(page, cluster)
    page.get_by_label("Id (").fill("fresh-drop")
    page.get_by_label("Title").fill("Fresh drop")
    page.get_by_role("button", name="Create event").click()
    expect(card(page, "fresh-drop").locator(".c-title")).to_have_text("Fresh drop")
    page.get_by_label("Id (").fill("Bad Id")
    page.get_by_role("button", name="Create event").click()
    expect(page.locator("#create-result")).to_contain_text("the event id must match")


def test_the_token_is_kept_for_the_tab_and_a_401_signs_out(page: Page, cluster: Cluster) -> None:
    sign_in(page, cluster)
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-state", "ok")  # no second sign-in
    page.evaluate("sessionStorage.setItem('wr-admin-token', 'stale')")
    page.reload()
    expect(page.get_by_role("alert")).to_have_text("The admin token was refused. Sign in again.")
    expect(page.get_by_label("Admin token")).to_be_focused()
