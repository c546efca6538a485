"""A hostile site tries to make its visitors join: an auto-submitted form and a no-cors fetch loop, in
Chromium. Nothing is created and the visitor's own ticket (wr_uid) is untouched; the page's own join
(same origin) still works."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.cluster import Cluster

from .helpers import open_waiting_page

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("deadline")]


@contextlib.contextmanager
def another_site(html: str) -> Iterator[str]:
    """A real server for a page on another site: localhost is not the same site as 127.0.0.1. (It must
    be a real loopback server: Chromium stops a page from a public address, or a routed one, reaching
    loopback at all, which would prove nothing about the waiting room.)"""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/win-a-prize"
    finally:
        server.shutdown()
        server.server_close()


def hostile_page(join_url: str) -> str:
    """A page that posts a join form at once and fires 20 no-cors joins; it reports when done."""
    return f"""<!doctype html><html><body>
<form id="f" method="post" action="{join_url}" target="sink"><input name="x" value="1"></form>
<iframe name="sink"></iframe>
<script>
  document.getElementById("f").submit();
  Promise.allSettled(Array.from({{length: 20}}, () =>
    fetch("{join_url}", {{method: "POST", mode: "no-cors", credentials: "include", body: "{{}}"}})
  )).then(() => {{ document.title = "done"; }});
</script></body></html>"""


def test_a_hostile_page_cannot_make_its_visitor_join(shared_cluster: Cluster, event: str, page: Any) -> None:
    c = shared_cluster
    c.put_event(event, status="paused")
    own = open_waiting_page(page, event)  # the visitor's own place, joined by the page itself
    assert own["http_status"] == 201
    uid_before = next(k["value"] for k in page.context.cookies() if k["name"] == "wr_uid")
    join_url = c.url(f"/api/events/{event}/tickets")
    refused: list[int] = []
    page.on("response", lambda r: refused.append(r.status) if r.url == join_url else None)

    with another_site(hostile_page(join_url)) as evil:
        page.goto(evil)
        page.wait_for_function("document.title === 'done'")

    assert c.stats(event)["tickets_issued"] == 1, "a cross-site join created a ticket"
    uid_after = next(k["value"] for k in page.context.cookies() if k["name"] == "wr_uid")
    assert uid_after == uid_before, "a cross-site join replaced the visitor's wr_uid"
    assert refused and set(refused) == {403}, refused  # the requests did reach the waiting room
    again = open_waiting_page(page, event)
    assert (again["http_status"], again["ticket"]) == (200, own["ticket"])
