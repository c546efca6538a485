"""WR_TEMPLATES_DIR with the shipped example (examples/templates): a shop's own waiting page in headless
Chromium that still holds a place in line, updates live and speaks both languages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cluster import Cluster

from .conftest import TICK_MS
from .helpers import crowd, open_waiting_page, save_screenshot, shown_position, t, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "templates"


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Cluster]:
    """The module's processes, with the example folder as WR_TEMPLATES_DIR."""
    cluster = Cluster(tmp_path_factory.mktemp("templates-cluster"), webs=1, promoters=1)
    cluster.env.update(WR_TICK_MS=str(TICK_MS), WR_TEMPLATES_DIR=str(EXAMPLE))
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_example_template_replaces_the_page_and_the_line_still_works(
    shared_cluster: Cluster, event: str, new_page: Any, tmp_path: Path, lang: str
) -> None:
    shared_cluster.put_event(event, title="Spring sneakers", description="One pair per customer.", status="paused")
    crowd(shared_cluster, event, 2)
    page = new_page(locale="ko-KR" if lang == "ko" else "en-US", viewport={"width": 1280, "height": 800})
    joined = open_waiting_page(page, event)
    wait_live(page, lang)
    assert page.title() == "Spring sneakers · Example Shop"
    assert page.locator(".shop-name").text_content() == "Example Shop"
    assert page.locator(".bar").count() == 0  # the built-in header was replaced
    footer = page.locator("#shop-footer").text_content() or ""
    assert ("공정한" in footer) == (lang == "ko")
    # the built-in parts it kept: description, live place in line, the visitor's language
    assert page.locator(".description").text_content() == "One pair per customer."
    assert shown_position(page, lang) == joined["position"] == 3
    assert page.locator("#position-label").text_content() == t("waiting_position_label", lang)
    save_screenshot(page, tmp_path, f"example-template-{lang}")

    shared_cluster.set_status(event, "open")
    page.wait_for_url(f"**/order/{event}", timeout=45_000)


def test_templates_it_does_not_override_stay_built_in(shared_cluster: Cluster, page: Any) -> None:
    response = page.goto("/")
    assert response is not None and response.status == 200
    assert page.locator(".bar .brand").text_content() == t("site_name")
