"""The operators' dashboard (/admin) in headless Chromium: sign in, steer the flow, talk to the people waiting."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.cluster import Cluster

from .helpers import PAGE_TIMEOUT_MS, crowd, open_waiting_page, save_screenshot, t, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]

HOSTILE = "<b>x</b><script>window.__wr_pwned = 1</script>"


def sign_in(page: Any, token: str) -> None:
    page.goto("/admin")
    page.get_by_label(re.compile("Admin token")).fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#board").wait_for(state="visible")


def card(page: Any, event: str) -> Any:
    found = page.locator(f'article.card[data-event="{event}"]')
    found.wait_for(state="visible")
    return found


def observed_rate(event_card: Any) -> float:
    """The observed admissions per minute the card shows ("12.5 observed · 30 set")."""
    text = event_card.locator(".n-rate").text_content() or ""
    found = re.match(r"\s*([\d,.]+)", text)
    assert found, f"no observed rate in {text!r}"
    return float(found.group(1).replace(",", ""))


def test_a_wrong_token_is_refused_and_the_right_one_signs_in(shared_cluster: Cluster, event: str, page: Any) -> None:
    shared_cluster.put_event(event, title="Dashboard sign-in")
    sign_in_failed = page.goto("/admin")
    assert sign_in_failed is not None and sign_in_failed.status == 200
    page.get_by_label(re.compile("Admin token")).fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("() => document.getElementById('login-error').textContent.length > 0")
    assert page.locator("#board").is_hidden()

    sign_in(page, shared_cluster.admin_token)
    event_card = card(page, event)
    assert event_card.locator(".c-title").text_content() == "Dashboard sign-in"
    page.wait_for_function("() => document.getElementById('live').dataset.state === 'ok'")


def test_changing_the_rate_is_followed_by_the_observed_rate(
    shared_cluster: Cluster, event: str, page: Any, tmp_path: Path
) -> None:
    """Slow to fast: the observed rate climbs well past anything the old rate could give (a ratio in one run)."""
    old, new = 30, 1200
    shared_cluster.put_event(event, rate_per_minute=old)
    shared_cluster.set_status(event, "paused")
    crowd(shared_cluster, event, 400)  # enough that the line never runs dry while the test watches
    sign_in(page, shared_cluster.admin_token)
    event_card = card(page, event)
    event_card.get_by_role("button", name="Open", exact=True).click()
    page.wait_for_function(
        "event => document.querySelector(`article.card[data-event='${event}']`).dataset.status === 'open'", arg=event
    )
    page.wait_for_function(
        "event => !/^0 /.test(document.querySelector(`article.card[data-event='${event}'] .n-rate`).textContent)",
        arg=event,
    )
    before = observed_rate(event_card)

    rate_input = event_card.locator("input[name=rate_per_minute]")
    rate_input.fill(str(new))
    event_card.get_by_role("button", name="Apply changes").click()
    result = event_card.locator(".c-result")
    page.wait_for_function("el => el.textContent.includes('1200')", arg=result.element_handle())
    assert shared_cluster.stats(event)["rate_per_minute"] == new
    page.wait_for_function(
        "el => el.textContent.includes('1,200 set')", arg=event_card.locator(".n-rate").element_handle()
    )

    wanted = max(4 * old, 2 * before)
    for _ in range(PAGE_TIMEOUT_MS // 250):
        if observed_rate(event_card) >= wanted:
            break
        page.wait_for_timeout(250)
    after = observed_rate(event_card)
    assert after >= wanted, f"observed {before}/min before, {after}/min after setting {new}/min"
    assert shared_cluster.stats(event)["waiting"] > 0, "the line ran dry, so the rate was not what limited it"
    save_screenshot(page, tmp_path, "dashboard")


def test_a_notice_sent_from_the_dashboard_reaches_an_open_waiting_page(
    shared_cluster: Cluster, event: str, new_page: Callable[..., Any]
) -> None:
    shared_cluster.put_event(event, title="Notice target")
    shared_cluster.set_status(event, "paused")  # else the page is admitted and leaves before the notice comes
    waiting = new_page()
    open_waiting_page(waiting, event)
    wait_live(waiting)

    admin = new_page()
    sign_in(admin, shared_cluster.admin_token)
    card(admin, event)
    admin.locator("#notice-target").select_option(event)
    admin.get_by_label("Warning").check()
    admin.locator("#notice-text").fill(HOSTILE)
    assert admin.locator("#preview-text").text_content() == HOSTILE, "the preview must show the text as written"
    assert admin.locator("#notice-preview b, #notice-preview script").count() == 0
    admin.get_by_role("button", name="Send notice").click()
    admin.wait_for_function("() => document.getElementById('notice-result').textContent.startsWith('Sent')")

    waiting.wait_for_function("text => document.getElementById('notice-status').textContent === text", arg=HOSTILE)
    assert waiting.locator(".notices b, .notices script").count() == 0
    assert waiting.evaluate("window.__wr_pwned") is None


def test_closing_asks_for_confirmation_and_tells_the_waiting_page(
    shared_cluster: Cluster, event: str, new_page: Callable[..., Any]
) -> None:
    shared_cluster.put_event(event, title="Closing soon")
    shared_cluster.set_status(event, "paused")
    waiting = new_page()
    open_waiting_page(waiting, event)
    wait_live(waiting)

    admin = new_page()
    sign_in(admin, shared_cluster.admin_token)
    event_card = card(admin, event)
    dialog = admin.locator("#confirm")

    event_card.get_by_role("button", name="Close…").click()
    dialog.wait_for(state="visible")
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")
    assert shared_cluster.put_event(event)["status"] == "paused", "cancelling must change nothing"

    event_card.get_by_role("button", name="Close…").click()
    dialog.wait_for(state="visible")
    dialog.locator("#confirm-ok").click()
    admin.wait_for_function(
        "event => document.querySelector(`article.card[data-event='${event}']`).dataset.status === 'closed'", arg=event
    )
    waiting.wait_for_function("text => document.getElementById('final-text').textContent === text", arg=t("js_closed"))


def test_the_fast_lane_and_the_page_are_set_from_the_card(shared_cluster: Cluster, event: str, page: Any) -> None:
    shared_cluster.put_event(event, title="Branded", status="paused")
    sign_in(page, shared_cluster.admin_token)
    event_card = card(page, event)
    result = event_card.locator(".c-result")

    event_card.locator("input[name=accent_color]").fill("pink")
    event_card.get_by_role("button", name="Apply changes").click()
    page.wait_for_function("el => el.textContent.includes('accent_color')", arg=result.element_handle())
    assert page.evaluate("() => document.activeElement.name") == "accent_color"  # the field named is focused

    event_card.locator("input[name=queue_only_when_full]").check()
    event_card.locator("textarea[name=description]").fill("Two lines\nof <b>plain</b> text")
    event_card.locator("input[name=logo_url]").fill("/static/favicon.svg")
    event_card.locator("input[name=accent_color]").fill("#C2185B")
    event_card.get_by_role("button", name="Apply changes").click()
    page.wait_for_function("el => el.classList.contains('ok')", arg=result.element_handle())
    settings = shared_cluster.put_event(event)
    assert settings["queue_only_when_full"] is True
    assert settings["description"] == "Two lines\nof <b>plain</b> text"
    assert (settings["logo_url"], settings["accent_color"]) == ("/static/favicon.svg", "#c2185b")

    # emptied fields go back to the defaults; the checkbox turns the fast lane off
    event_card.locator("input[name=queue_only_when_full]").uncheck()
    event_card.locator("input[name=logo_url]").fill("")
    event_card.locator("input[name=accent_color]").fill("")
    event_card.get_by_role("button", name="Apply changes").click()
    page.wait_for_function("el => el.textContent.includes('none')", arg=result.element_handle())
    settings = shared_cluster.put_event(event)
    assert (settings["queue_only_when_full"], settings["logo_url"], settings["accent_color"]) == (False, None, None)
    assert settings["description"] == "Two lines\nof <b>plain</b> text"
