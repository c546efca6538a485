"""The waiting page (/e/{event}) as a person sees it, in headless Chromium against the real processes."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.cluster import Cluster

from .helpers import (
    PAGE_TIMEOUT_MS,
    crowd,
    open_waiting_page,
    save_screenshot,
    shown_position,
    t,
    wait_live,
    wait_position,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]

HOSTILE = "<b>x</b><script>window.__wr_pwned = 1</script>"


def paused_event_with_crowd(cluster: Cluster, event: str, ahead: int, **settings: Any) -> None:
    """An event with `ahead` people in line and nobody let in yet, so a position can be read before it moves."""
    cluster.put_event(event, **{"title": f"Browser test {event}", "rate_per_minute": 120, **settings})
    cluster.set_status(event, "paused")
    crowd(cluster, event, ahead)


def test_position_falls_live_then_admission_leads_to_the_order_form(
    shared_cluster: Cluster, event: str, page: Any
) -> None:
    """Issue 2's loop: live position without reload, admission, order form, "complete order", thank you."""
    paused_event_with_crowd(shared_cluster, event, 6)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    ticket = open_waiting_page(page, event)
    assert ticket["position"] == 7
    first = wait_position(page, lambda p: p == 7, "the place after six others")
    page.evaluate("window.__wr_same_document = true")
    wait_live(page)

    shared_cluster.set_status(event, "open")
    wait_position(page, lambda p: p < first, "a smaller number than at join")
    assert page.evaluate("window.__wr_same_document") is True, "the position changed through a reload"
    assert navigations == [page.url], "the page navigated while waiting"
    page.wait_for_function(
        "text => document.getElementById('announcer').textContent.startsWith(text)",
        arg=t("js_announce").split("{position}")[0],
    )

    page.wait_for_url(f"**/order/{event}", timeout=PAGE_TIMEOUT_MS)
    assert page.locator("#order-heading").text_content() == t("order_title")
    complete = page.get_by_role("button", name=t("order_complete"))
    assert complete.is_visible()
    assert shared_cluster.stats(event)["active"] == 1
    complete.click()
    page.wait_for_function(
        "text => document.getElementById('order-heading')?.textContent === text", arg=t("order_done_title")
    )
    stats = shared_cluster.stats(event)
    assert stats["active"] == 0, f"completing the order must free its capacity: {stats}"


def test_reload_keeps_the_same_ticket_and_place(shared_cluster: Cluster, event: str, page: Any) -> None:
    paused_event_with_crowd(shared_cluster, event, 3)
    first = open_waiting_page(page, event)
    assert first["http_status"] == 201
    wait_position(page, lambda p: p == 4, "the place after three others")
    wait_live(page)

    with page.expect_response(lambda r: r.url.endswith(f"/api/events/{event}/tickets")) as rejoined:
        page.reload()
    again = rejoined.value
    assert again.status == 200, "a reload must find the existing ticket, not make a new one"
    assert again.json()["ticket"] == first["ticket"]
    assert wait_position(page, lambda p: p == 4, "the same place after reload") == 4
    wait_live(page)
    assert [url.rsplit("/", 1)[-1] for url in page.wr_sockets] == [first["ticket"]] * 2


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_reconnects_after_the_web_process_restarts_with_the_same_ticket_and_place(
    shared_cluster: Cluster, event: str, page: Any, sig: signal.Signals
) -> None:
    paused_event_with_crowd(shared_cluster, event, 2)
    ticket = open_waiting_page(page, event)["ticket"]
    wait_position(page, lambda p: p == 3, "the place after two others")
    wait_live(page)
    page.evaluate("window.__wr_same_document = true")

    web = shared_cluster.webs[0]
    assert web is not None
    web.stop(sig)
    reconnecting = t("js_conn_reconnecting").split("{seconds}")[0]
    page.wait_for_function(
        "text => document.getElementById('conn-text').textContent.startsWith(text)", arg=reconnecting
    )
    assert page.locator("#retry").is_visible(), "a dropped connection must offer a visible retry"
    shared_cluster.start_web(0)

    wait_live(page)
    assert page.evaluate("window.__wr_same_document") is True, "the page reloaded instead of reconnecting"
    assert len(page.wr_sockets) >= 2
    assert {url.rsplit("/", 1)[-1] for url in page.wr_sockets} == {ticket}, page.wr_sockets
    assert shown_position(page) == 3
    assert shared_cluster.ticket(ticket)["position"] == 3


def test_notice_banner_shows_markup_as_text(
    shared_cluster: Cluster, event: str, page: Any, new_page: Callable[..., Any]
) -> None:
    paused_event_with_crowd(shared_cluster, event, 0)  # paused: the page stays in line, not off to the order page
    open_waiting_page(page, event)
    wait_live(page)

    r = shared_cluster.admin.post(
        shared_cluster.url(f"/api/admin/events/{event}/notices"), json={"text": HOSTILE, "level": "warning"}
    )
    assert r.status_code == 201, r.text
    banner = page.locator("#notice-status")
    banner.wait_for(state="visible")
    page.wait_for_function("text => document.getElementById('notice-status').textContent === text", arg=HOSTILE)
    assert page.locator(".notices *").count() == 2, "the notice text created elements"
    assert page.locator(".notices b, .notices script").count() == 0
    assert page.evaluate("window.__wr_pwned") is None

    # someone arriving later sees the latest notice at connect
    later = new_page()
    open_waiting_page(later, event)
    later.wait_for_function("text => document.getElementById('notice-status').textContent === text", arg=HOSTILE)

    r = shared_cluster.admin.post(
        shared_cluster.url(f"/api/admin/events/{event}/notices"), json={"text": "Doors close soon", "level": "critical"}
    )
    assert r.status_code == 201, r.text
    alert = page.get_by_role("alert")
    alert.wait_for(state="visible")
    assert alert.text_content() == "Doors close soon"


def test_paused_sold_out_and_closed_are_told_in_words(
    shared_cluster: Cluster, event: str, page: Any, new_page: Callable[..., Any]
) -> None:
    paused_event_with_crowd(shared_cluster, event, 1)
    open_waiting_page(page, event)
    wait_live(page)
    note = page.locator("#paused-note")
    note.wait_for(state="visible")
    assert note.text_content() == t("js_paused")
    assert page.locator("#eta").text_content() == t("js_eta_paused")

    final = page.locator("#final-text")
    shared_cluster.set_status(event, "sold_out")
    final.wait_for(state="visible")
    page.wait_for_function("text => document.getElementById('final-text').textContent === text", arg=t("js_sold_out"))
    assert page.locator("#panel-queue").is_hidden()

    shared_cluster.set_status(event, "closed")
    page.wait_for_function("text => document.getElementById('final-text').textContent === text", arg=t("js_closed"))

    # arriving at an event that is already over: words from the first paint, not a spinner
    for status, key in (("sold_out", "waiting_status_sold_out"), ("closed", "waiting_status_closed")):
        other = f"{event}-{status.replace('_', '')}"
        shared_cluster.put_event(other)
        shared_cluster.set_status(other, status)
        late = new_page()
        response = late.goto(f"/e/{other}")
        assert response is not None and response.status == 200
        assert late.locator("#final-text").text_content() == t(key)
        assert late.locator("#final-text").is_visible()


@pytest.mark.parametrize("how", ["accept-language", "query"])
def test_korean_and_english_render(shared_cluster: Cluster, event: str, new_page: Callable[..., Any], how: str) -> None:
    paused_event_with_crowd(shared_cluster, event, 4)
    page = new_page(locale="ko-KR") if how == "accept-language" else new_page()
    open_waiting_page(page, event, "" if how == "accept-language" else "?lang=ko")
    assert page.evaluate("document.documentElement.lang") == "ko"
    assert page.locator("#position-label").text_content() == t("waiting_position_label", "ko")
    wait_live(page, "ko")
    wait_position(page, lambda p: p == 5, "the place in Korean", "ko")
    assert page.locator("#position").text_content() == t("js_position", "ko").format(position=5)
    assert page.locator("#paused-note").text_content() == t("js_paused", "ko")

    # switchable: the language links lead to English, which the page then keeps
    with page.expect_response(lambda r: r.url.endswith(f"/api/events/{event}/tickets")):
        page.get_by_role("link", name="English").click()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#position-label").text_content() == t("waiting_position_label")
    wait_live(page)
    wait_position(page, lambda p: p == 5, "the same place in English")
    assert page.locator("#position").text_content() == t("js_position").format(position=5)
    page.goto(f"/e/{event}")
    assert page.locator("#position-label").text_content() == t("waiting_position_label")


def test_phone_width_has_no_horizontal_scroll(
    shared_cluster: Cluster, event: str, new_page: Callable[..., Any], tmp_path: Path
) -> None:
    """320 px wide, a four-digit place, a long title and an unbreakable notice: nothing scrolls sideways."""
    paused_event_with_crowd(shared_cluster, event, 1234, title="Summer festival presale — general admission")
    r = shared_cluster.admin.post(
        shared_cluster.url(f"/api/admin/events/{event}/notices"),
        json={"text": "Gates_open_at_18:00_" * 6 + " — please keep this page open.", "level": "info"},
    )
    assert r.status_code == 201, r.text
    for lang, locale in (("en", "en-US"), ("ko", "ko-KR")):
        page = new_page(viewport={"width": 320, "height": 640}, locale=locale)
        open_waiting_page(page, event)
        wait_live(page, lang)
        wait_position(page, lambda p: p > 1234, "a place behind 1,234 people", lang)
        page.locator("#notice-status").wait_for(state="visible")

        widths = page.evaluate(
            "({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth})"
        )
        assert widths["client"] == 320
        assert widths["scroll"] <= widths["client"], f"horizontal scroll at 320 px in {lang}: {widths}"
        assert save_screenshot(page, tmp_path, f"waiting-phone-{lang}").stat().st_size > 0

        desktop = new_page(viewport={"width": 1280, "height": 800}, locale=locale)
        open_waiting_page(desktop, event)
        wait_live(desktop, lang)
        desktop.locator("#notice-status").wait_for(state="visible")
        widths = desktop.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"horizontal scroll at 1280 px in {lang}: {widths}"
        save_screenshot(desktop, tmp_path, f"waiting-desktop-{lang}")
        weight = desktop.evaluate("""() => performance.getEntriesByType('navigation')
            .concat(performance.getEntriesByType('resource'))
            .filter(e => !e.name.includes('/api/'))
            .reduce((sum, e) => sum + e.decodedBodySize, 0)""")
        assert 0 < weight < 50_000, f"the waiting page with its script, style and icon weighs {weight} bytes"
