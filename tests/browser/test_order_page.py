"""Admission as the browser lives it: the token is posted to the order page, redeemed once, never left in a URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from support.cluster import Cluster

from .helpers import PAGE_TIMEOUT_MS, history_urls, open_waiting_page, t

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]


def admitted_to_order_page(page: Any, event: str) -> dict[str, Any]:
    """Open the waiting page, let it be admitted and carried to the order page; return what it sent there."""
    sent: list[Any] = []
    documents: list[Any] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith(f"/order/{event}") and r.method == "POST" else None)
    page.on("response", lambda r: documents.append(r) if r.request.resource_type == "document" else None)
    ticket = open_waiting_page(page, event)
    page.wait_for_function(
        "text => document.getElementById('turn-title').textContent === text"
        " && !document.getElementById('panel-turn').hidden",
        arg=t("js_your_turn"),
    )
    page.wait_for_url(f"**/order/{event}", timeout=PAGE_TIMEOUT_MS)
    page.locator("#order-heading").wait_for()
    assert len(sent) == 1, [r.url for r in sent]
    token = parse_qs(sent[0].post_data or "").get("token", [""])[0]
    assert token.count(".") == 2, "the waiting page posted no JWT"
    return {"ticket": ticket["ticket"], "token": token, "request": sent[0], "documents": documents}


def test_the_token_is_posted_and_stays_out_of_the_address_bar_and_history(
    shared_cluster: Cluster, event: str, page: Any
) -> None:
    shared_cluster.put_event(event, title="Order page test")
    admitted = admitted_to_order_page(page, event)
    token = admitted["token"]

    assert "token" not in admitted["request"].url and token not in admitted["request"].url
    assert page.url == shared_cluster.url(f"/order/{event}")
    urls = history_urls(page)
    assert urls[-1] == page.url
    assert not [url for url in urls if "token" in url or token in url], urls
    assert not [r.url for r in admitted["documents"] if token in r.url]
    for response in admitted["documents"]:
        assert response.headers.get("referrer-policy") == "no-referrer", response.url
    assert page.locator("#order-heading").text_content() == t("order_title")
    assert shared_cluster.ticket(admitted["ticket"])["state"] == "redeemed"


def test_the_same_token_a_second_time_shows_the_used_page_with_409(
    shared_cluster: Cluster, event: str, page: Any, new_page: Callable[..., Any]
) -> None:
    shared_cluster.put_event(event)
    token = admitted_to_order_page(page, event)["token"]

    again = page.context.request.post(shared_cluster.url(f"/order/{event}"), form={"token": token})
    assert again.status == 409
    assert t("order_used_title") in again.text()

    elsewhere = new_page()  # the token copied into another browser
    response = elsewhere.goto(f"/order/{event}?token={token}")
    assert response is not None and response.status == 409
    assert elsewhere.locator("#order-heading").text_content() == t("order_used_title")
    assert elsewhere.get_by_role("link", name=t("order_back")).get_attribute("href") == f"/e/{event}"

    # the first browser keeps its session and its order form
    page.reload()
    assert page.locator("#order-heading").text_content() == t("order_title")


def test_completing_the_order_frees_the_place_for_the_next_person(
    shared_cluster: Cluster, event: str, page: Any
) -> None:
    shared_cluster.put_event(event, max_active=1)
    admitted_to_order_page(page, event)
    behind = shared_cluster.join(event)["ticket"]
    assert shared_cluster.ticket(behind)["state"] == "waiting", "capacity 1 is held by the open order"

    page.get_by_role("button", name=t("order_complete")).click()
    page.wait_for_function(
        "text => document.getElementById('order-heading')?.textContent === text", arg=t("order_done_title")
    )
    assert page.locator("main").inner_text().count(t("order_done_text")) == 1
    shared_cluster.wait_state(behind, "admitted", within=PAGE_TIMEOUT_MS / 1000)


def test_the_order_page_without_a_valid_token_sends_back_or_refuses(
    shared_cluster: Cluster, event: str, page: Any
) -> None:
    shared_cluster.put_event(event)
    shared_cluster.set_status(event, "paused")  # the line it is sent back to must not move it on by itself
    page.goto(f"/order/{event}")
    assert page.url == shared_cluster.url(f"/e/{event}"), "no token and no session: back to the line"

    response = page.goto(f"/order/{event}?token=not.a.token")
    assert response is not None and response.status == 401
    assert page.locator("#order-heading").text_content() == t("order_invalid_title")
