"""What the browser tests do again and again: open the waiting page, read what it shows, inspect history."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.cluster import Cluster

from waiting_room.web.i18n import STRINGS

#: liveness only: how long a page may take to show what it must show (never a speed requirement)
PAGE_TIMEOUT_MS = 45_000


def t(key: str, lang: str = "en") -> str:
    return STRINGS[lang][key]


def crowd(cluster: Cluster, event: str, n: int) -> list[str]:
    """`n` other people in line, joined over HTTP without cookies, each from an address of their own
    (from one address, a fast enough crowd would meet the per-address join limit, as a flood should)."""
    return [cluster.join(event, forwarded_for=f"198.18.{i // 256 % 256}.{i % 256}")["ticket"] for i in range(n)]


def open_waiting_page(page: Any, event: str, query: str = "") -> dict[str, Any]:
    """Open /e/{event}, wait for its join, return the ticket JSON the page received."""
    with page.expect_response(lambda r: r.url.endswith(f"/api/events/{event}/tickets")) as joined:
        page.goto(f"/e/{event}{query}")
    response = joined.value
    assert response.status in (200, 201), response.text()
    body: dict[str, Any] = response.json()
    body["http_status"] = response.status
    return body


def shown_position(page: Any, lang: str = "en") -> int | None:
    """The number the page shows as the place in line (None while joining)."""
    text = page.locator("#position").text_content() or ""
    if text == t("js_position_front", lang):
        return 1
    number = page.locator("#position .num")
    if number.count() == 0:
        return None
    return int(re.sub(r"\D", "", number.text_content() or ""))


def wait_live(page: Any, lang: str = "en") -> None:
    page.wait_for_function(
        "text => document.getElementById('conn-text').textContent === text", arg=t("js_conn_live", lang)
    )


def wait_position(page: Any, predicate: Callable[[int], bool], what: str, lang: str = "en") -> int:
    """Poll the shown position until `predicate` holds (liveness deadline only)."""
    deadline_ms = PAGE_TIMEOUT_MS
    step_ms = 100
    for _ in range(deadline_ms // step_ms):
        position = shown_position(page, lang)
        if position is not None and predicate(position):
            return position
        page.wait_for_timeout(step_ms)
    raise AssertionError(f"the page never showed {what}; it shows {page.locator('#position').text_content()!r}")


def history_urls(page: Any) -> list[str]:
    """Every URL in the tab's session history, from Chromium itself."""
    session = page.context.new_cdp_session(page)
    try:
        entries = session.send("Page.getNavigationHistory")["entries"]
    finally:
        session.detach()
    return [entry["url"] for entry in entries]


def save_screenshot(page: Any, tmp_path: Path, name: str, full_page: bool = True) -> Path:
    """A PNG under the test's tmp dir; also into $WR_SCREENSHOT_DIR when set (how docs/ gets its pictures)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    extra = os.environ.get("WR_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / path.name)
    return path
