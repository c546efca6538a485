"""An event that asks for proof of work at join: the page solves the challenge in a Web Worker, shows
its progress, and joins with the answer; the ticket then behaves like any other."""

from __future__ import annotations

from typing import Any

import pytest
from support.cluster import Cluster

from .helpers import shown_position, t, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]

DIFFICULTY = 14


def test_the_page_proves_its_work_in_a_worker_then_joins(shared_cluster: Cluster, event: str, page: Any) -> None:
    c = shared_cluster
    c.put_event(event, status="paused")
    ahead = [c.join(event) for _ in range(2)]
    c.put_event(event, pow_difficulty=DIFFICULTY)
    joins: list[int] = []
    workers: list[str] = []
    page.on("response", lambda r: joins.append(r.status) if r.url.endswith(f"/api/events/{event}/tickets") else None)
    page.on("worker", lambda w: workers.append(w.url))
    progress_prefix = t("js_proof_working").split("{percent}")[0]
    page.add_init_script(
        "new MutationObserver(() => {"
        "  const el = document.getElementById('position');"
        "  if (el && el.textContent.startsWith(PREFIX)) window.__wr_progress_seen = true;"
        "}).observe(document, {subtree: true, childList: true, characterData: true});".replace(
            "PREFIX", repr(progress_prefix)
        )
    )
    page.goto(f"/e/{event}")
    page.wait_for_function("() => document.querySelector('#position .num') !== null")
    wait_live(page)

    assert joins == [428, 201], joins
    assert [url.rsplit("/", 1)[-1] for url in workers] == ["proof-worker.js"]
    assert page.evaluate("window.__wr_progress_seen") is True, "no progress was shown while solving"
    assert shown_position(page) == len(ahead) + 1
    assert c.stats(event)["tickets_issued"] == len(ahead) + 1
    page.reload()  # the holder reloads: its ticket comes back without another proof
    wait_live(page)
    assert joins[2:] == [200]
