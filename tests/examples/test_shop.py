"""examples/shop: the one command from its README, then a visitor's whole way through its checkout."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path

import httpx
import pytest
from support.cluster import Proc
from support.gated import BROWSER
from support.waiting import poll

from waiting_room.store.embedded import free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

RUN = Path(__file__).parents[2] / "examples" / "shop" / "run.py"


def answers(client: httpx.Client, url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return client.get(url, timeout=1).status_code == 200
    return False


def test_the_shop_runs_with_one_command_and_its_checkout_is_behind_the_line(tmp_path: Path) -> None:
    shop_port, wr_port = free_port(), free_port()
    admin_token = secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WR_", "SHOP_"))}
    env.update(WR_ADMIN_TOKEN=admin_token, WR_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    argv = [sys.executable, str(RUN), "--port", str(shop_port), "--waiting-room-port", str(wr_port)]
    proc = Proc("shop", argv, env, tmp_path / "shop.log")
    shop, wr = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{wr_port}"
    probe = httpx.Client(trust_env=False, timeout=10)
    browser = httpx.Client(trust_env=False, timeout=10, headers=BROWSER, base_url=shop)
    try:
        poll(lambda: proc.running and answers(probe, f"{shop}/healthz"), lambda: proc.describe(), within=60)
        assert "Spring sale" in browser.get("/").text  # the catalogue is open to all
        r = browser.get("/checkout")
        assert r.status_code == 303 and r.headers["location"] == f"{wr}/e/demo"

        admin = {"Authorization": f"Bearer {admin_token}"}
        event = probe.put(f"{wr}/api/admin/events/demo", json={"rate_per_minute": 6000}, headers=admin).json()
        assert event["target_url"] == f"{shop}/checkout"  # run.py pointed the event at the shop
        ticket = probe.post(f"{wr}/api/events/demo/tickets", json={}).json()["ticket"]

        def admitted() -> str | None:
            body = probe.get(f"{wr}/api/tickets/{ticket}").json()
            return body.get("token") if body["state"] == "admitted" else None

        token = poll(admitted, "the visitor to be admitted", within=30)
        r = browser.post("/checkout", data={"token": token})  # what the waiting page does
        assert r.status_code == 303 and r.headers["location"] == "/checkout"
        assert "<form" in browser.get("/checkout").text
        r = browser.post("/checkout/pay", data={"product": "2"})
        assert r.status_code == 200 and "Concert ticket" in r.text
        assert browser.post("/.waiting-room/release").status_code == 204
        assert browser.get("/checkout").status_code == 303
    finally:
        probe.close()
        browser.close()
        proc.stop()
    assert proc.popen.returncode == 0, proc.describe()
    gone = httpx.Client(trust_env=False)
    poll(lambda: not answers(gone, f"{wr}/healthz"), "Ctrl-C (SIGTERM) to stop the waiting room too", within=20)
    gone.close()
