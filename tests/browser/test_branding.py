"""An event's own page in headless Chromium: description as text, logo, a readable accent in light and
dark, both languages, no CSP violation; and the fast lane, where the browser never sees a waiting page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.cluster import Cluster

from waiting_room.core.theme import contrast

from .helpers import PAGE_TIMEOUT_MS, crowd, open_waiting_page, save_screenshot, t, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]

DESCRIPTION = "Limited <b>spring</b> drop & more.\nOne pair per customer."
BUILT_IN_ACCENTS = {"#1f5fa8", "#82b6f0"}

READ_COLOURS = """() => {
  const root = getComputedStyle(document.documentElement);
  const link = document.querySelector('.langs a:not([aria-current])');
  return {
    accent: root.getPropertyValue('--accent').trim(),
    onAccent: root.getPropertyValue('--on-accent').trim(),
    card: getComputedStyle(document.querySelector('.card')).backgroundColor,
    page: getComputedStyle(document.body).backgroundColor,
    link: getComputedStyle(link).color,
  };
}"""


def as_hex(css: str) -> str:
    """`rgb(r, g, b)` (as getComputedStyle answers) or `#rrggbb` as `#rrggbb`."""
    if css.startswith("#"):
        return css.lower()
    found = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, [\d.]+)?\)", css)
    assert found, css
    return "#" + "".join(f"{int(c):02x}" for c in found.groups())


def csp_violations(page: Any) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


@pytest.mark.parametrize(("scheme", "lang"), [("light", "en"), ("dark", "ko"), ("dark", "en"), ("light", "ko")])
def test_the_page_shows_the_events_description_logo_and_a_readable_accent(
    shared_cluster: Cluster, event: str, new_page: Callable[..., Any], tmp_path: Path, scheme: str, lang: str
) -> None:
    shared_cluster.put_event(
        event,
        title="Spring sneakers",
        description=DESCRIPTION,
        logo_url="/static/favicon.svg",
        accent_color="#ffcc00",  # too light for text on white: the light theme must darken it
        status="paused",
    )
    crowd(shared_cluster, event, 3)
    page = new_page(
        color_scheme=scheme, locale="ko-KR" if lang == "ko" else "en-US", viewport={"width": 1280, "height": 800}
    )
    violations = csp_violations(page)
    open_waiting_page(page, event)
    wait_live(page, lang)

    description = page.locator(".description")
    assert description.text_content() == DESCRIPTION  # as text: the markup is shown, not applied
    assert description.locator("b").count() == 0
    logo = page.locator("img.logo")
    assert logo.get_attribute("alt") == t("waiting_logo_alt", lang).format(title="Spring sneakers")
    page.wait_for_function("() => document.querySelector('img.logo').naturalWidth > 0", timeout=PAGE_TIMEOUT_MS)

    colours = page.evaluate(READ_COLOURS)
    accent, on_accent = as_hex(colours["accent"]), as_hex(colours["onAccent"])
    assert accent not in BUILT_IN_ACCENTS, "the event's accent was not applied"
    assert as_hex(colours["link"]) == accent
    for background in (as_hex(colours["card"]), as_hex(colours["page"])):
        assert contrast(accent, background) >= 4.5, f"accent {accent} on {background} ({scheme})"
    assert contrast(on_accent, accent) >= 4.5, f"{on_accent} on the accent {accent} ({scheme})"
    assert violations == []
    save_screenshot(page, tmp_path, f"branding-{scheme}-{lang}")


def test_a_logo_on_another_site_is_allowed_by_the_pages_policy_only(
    shared_cluster: Cluster, event: str, page: Any
) -> None:
    shared_cluster.put_event(event, logo_url="https://cdn.shop.example/brand/logo.svg", status="paused")
    response = page.goto(f"/e/{event}")
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data: https://cdn.shop.example;" in policy
    assert "script-src 'self';" in policy  # still no inline script
    assert page.locator("img.logo").get_attribute("src") == "https://cdn.shop.example/brand/logo.svg"
    other = page.request.get("/")
    assert "cdn.shop.example" not in other.headers["content-security-policy"]


def test_with_room_and_nobody_waiting_the_browser_goes_straight_to_the_target(
    shared_cluster: Cluster, event: str, page: Any, tmp_path: Path
) -> None:
    shared_cluster.put_event(event, queue_only_when_full=True, max_active=1, rate_per_minute=600)
    seen: list[tuple[int, str]] = []
    page.on("response", lambda r: seen.append((r.status, r.url)))
    page.goto(f"/e/{event}")
    page.wait_for_url(re.compile(rf"/order/{event}$"))
    page.locator("form").first.wait_for(state="visible")
    assert [s for s, url in seen if url.endswith(f"/e/{event}")] == [303], seen  # no waiting page at all
    assert not any("/static/waiting.js" in url for _, url in seen)
    assert shared_cluster.stats(event)["active"] == 1
    save_screenshot(page, tmp_path, "fast-lane-order")

    # now it is full: the next browser waits on the page like before
    other = page.context.browser.new_context(base_url=shared_cluster.url(""))
    try:
        waiting = other.new_page()
        joined = open_waiting_page(waiting, event)
        assert (joined["state"], joined["position"], joined["http_status"]) == ("waiting", 1, 200)
    finally:
        other.close()
