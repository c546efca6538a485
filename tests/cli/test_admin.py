"""`waiting-room event|notice|stats` as an operator runs them: the real CLI against a real web process.

One web process and redis-server serve the whole module (no promoter: the
CLI only talks to the admin API); each test uses its own event id.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from support.cluster import CLI, Cluster, running

from waiting_room.store.embedded import free_port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("admin-cli"), webs=1, promoters=0) as made:
        yield made


@pytest.fixture
def event() -> str:
    return f"cli-{uuid4().hex[:8]}"


def cli(cluster: Cluster, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env={**cluster.env, **env}, capture_output=True, text=True, timeout=30, check=False
    )


def ok(cluster: Cluster, *args: str) -> str:
    done = cli(cluster, *args)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
    assert done.stderr == ""
    return done.stdout


def ok_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(ok(cluster, *args, "--json"))


def refused(cluster: Cluster, *args: str, code: int = 2, **env: str) -> str:
    """The command failed the way an operator can act on: one `error:` line, no traceback."""
    done = cli(cluster, *args, **env)
    assert done.returncode == code, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    return done.stderr


def shows(table: str, field: str, value: str) -> bool:
    """A `field  value` line of the settings table, however wide its first column."""
    return re.search(rf"^{field} +{re.escape(value)}$", table, re.MULTILINE) is not None


def test_put_creates_then_changes_only_the_given_settings(cluster: Cluster, event: str) -> None:
    created = ok_json(
        cluster,
        "event",
        "put",
        event,
        "--title",
        "Spring sale",
        "--rate",
        "120",
        "--max-active",
        "50",
        "--token-ttl",
        "90",
        "--session-ttl",
        "900",
        "--abandon-after",
        "60",
        "--target-url",
        "https://shop.example/checkout",
        "--client-joins-per-minute",
        "30",
        "--client-max-waiting",
        "4",
        "--pow-difficulty",
        "12",
    )
    assert created == {
        "id": event,
        "title": "Spring sale",
        "rate_per_minute": 120,
        "max_active": 50,
        "token_ttl_seconds": 90,
        "session_ttl_seconds": 900,
        "abandon_after_seconds": 60,
        "opens_at": None,
        "status": "open",
        "target_url": "https://shop.example/checkout",
        "client_joins_per_minute": 30,
        "client_max_waiting": 4,
        "pow_difficulty": 12,
        "queue_only_when_full": False,
        "description": "",
        "logo_url": None,
        "accent_color": None,
    }
    shown = ok(cluster, "event", "put", event, "--rate", "30")
    assert shows(shown, "rate_per_minute", "30") and shows(shown, "max_active", "50")
    assert cluster.admin.get(cluster.url(f"/api/admin/events/{event}")).json()["rate_per_minute"] == 30


def test_put_sets_the_fast_lane_and_the_page_of_the_event(cluster: Cluster, event: str) -> None:
    branded = ok_json(
        cluster,
        "event",
        "put",
        event,
        "--queue-only-when-full",
        "--description",
        "Limited drop.\nOne per customer.",
        "--logo-url",
        "https://cdn.shop.example/logo.svg",
        "--accent-color",
        "#C2185B",
    )
    assert branded["queue_only_when_full"] is True
    assert branded["description"] == "Limited drop.\nOne per customer."
    assert (branded["logo_url"], branded["accent_color"]) == ("https://cdn.shop.example/logo.svg", "#c2185b")
    # only what is given changes; --no-... and '' turn things off again
    assert ok_json(cluster, "event", "put", event, "--rate", "60")["queue_only_when_full"] is True
    cleared = ok_json(
        cluster, "event", "put", event, "--no-queue-only-when-full", "--logo-url", "", "--accent-color", ""
    )
    assert (cleared["queue_only_when_full"], cleared["logo_url"], cleared["accent_color"]) == (False, None, None)
    assert cleared["description"] == "Limited drop.\nOne per customer."
    for option, value, field in (
        ("--accent-color", "pink", "accent_color"),
        ("--logo-url", "http://cdn.shop.example/logo.svg", "logo_url"),
        ("--description", "x" * 1001, "description"),
    ):
        assert refused(cluster, "event", "put", event, option, value).startswith(f"error: invalid_settings: {field} ")


def test_put_takes_opens_at_as_unix_iso_or_none(cluster: Cluster, event: str) -> None:
    assert ok_json(cluster, "event", "put", event, "--opens-at", "1893456000")["opens_at"] == 1893456000
    assert ok_json(cluster, "event", "put", event, "--opens-at", "2030-01-01T00:00:00Z")["opens_at"] == 1893456000
    assert ok_json(cluster, "event", "put", event, "--opens-at", "2030-01-01T09:00:00+09:00")["opens_at"] == 1893456000
    assert ok_json(cluster, "event", "put", event, "--opens-at", "none")["opens_at"] is None
    assert "--opens-at" in refused(cluster, "event", "put", event, "--opens-at", "next tuesday")


def test_list_shows_every_event_as_a_table_and_as_json(cluster: Cluster, event: str) -> None:
    other = f"{event}-b"
    ok(cluster, "event", "put", event, "--title", "First", "--rate", "60")
    ok(cluster, "event", "put", other, "--max-active", "7")
    table = ok(cluster, "event", "list").splitlines()
    assert table[0].split() == [
        "EVENT",
        "STATUS",
        "TITLE",
        "RATE/MIN",
        "MAX",
        "ACTIVE",
        "WAITING",
        "ACTIVE",
        "SERVED",
        "CONNS",
    ]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows[event][:5] == [event, "open", "First", "60", "none"]
    assert rows[other][:5] == [other, "open", other, "600", "7"]
    listed = {e["id"]: e for e in ok_json(cluster, "event", "list")["events"]}
    assert listed[other]["settings"]["max_active"] == 7
    assert listed[event]["stats"]["waiting"] == 0


def test_status_changes_and_the_api_validates_it(cluster: Cluster, event: str) -> None:
    ok(cluster, "event", "put", event)
    assert shows(ok(cluster, "event", "status", event, "paused"), "status", "paused")
    assert ok_json(cluster, "event", "status", event, "sold_out")["status"] == "sold_out"
    error = refused(cluster, "event", "status", event, "asleep")
    assert error.startswith("error: invalid_settings: status must be one of open, paused, sold_out, closed")
    assert "unknown_event" in refused(cluster, "event", "status", f"{event}-nope", "open")


def test_a_bad_setting_is_refused_naming_the_field(cluster: Cluster, event: str) -> None:
    error = refused(cluster, "event", "put", event, "--rate", "0")
    assert error == "error: invalid_settings: rate_per_minute must be between 1 and 1000000\n"
    assert "target_url" in refused(cluster, "event", "put", event, "--target-url", "javascript:alert(1)")
    assert cluster.admin.get(cluster.url(f"/api/admin/events/{event}")).status_code == 404  # nothing written


def test_notice_to_one_event_and_to_all(cluster: Cluster, event: str) -> None:
    ok(cluster, "event", "put", event)
    line = ok(cluster, "notice", event, "Back in 5 minutes <b>", "--level", "warning")
    assert line.startswith("sent warning notice ")
    assert line.endswith(f" to {event}: Back in 5 minutes <b>\n")
    sent = ok_json(cluster, "notice", "--all", "Hello everyone")
    assert set(sent) == {"id", "text", "level", "at"}
    assert (sent["text"], sent["level"]) == ("Hello everyone", "info")
    assert "level must be one of" in refused(cluster, "notice", event, "hi", "--level", "shout")
    assert "text may be at most 500" in refused(cluster, "notice", event, "x" * 501)
    assert "usage" in refused(cluster, "notice", "only-text")


def test_stats_of_one_event_and_of_all(cluster: Cluster, event: str) -> None:
    ok(cluster, "event", "put", event, "--rate", "90")
    for _ in range(3):
        cluster.join(event)
    stats = ok_json(cluster, "stats", event)
    assert stats["waiting"] == 3
    assert stats["tickets_issued"] == 3
    assert stats["rate_per_minute"] == 90
    table = ok(cluster, "stats").splitlines()
    assert table[0].split()[:3] == ["EVENT", "STATUS", "WAITING"]
    row = next(line.split() for line in table if line.startswith(event + " "))
    assert row[:3] == [event, "open", "3"]
    assert event in {e["id"] for e in ok_json(cluster, "stats")["events"]}


def test_stats_watch_refreshes_until_ctrl_c(cluster: Cluster, event: str) -> None:
    ok(cluster, "event", "put", event)
    argv = [CLI, "stats", event, "--watch", "--interval", "0.2", "--json"]
    with subprocess.Popen(argv, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            first = json.loads(proc.stdout.readline())
            cluster.join(event)
            frames = [json.loads(proc.stdout.readline()) for _ in range(15)]
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
            assert "Traceback" not in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert first["events"][0]["waiting"] == 0
    assert frames[-1]["events"][0]["waiting"] == 1  # the refresh saw the join
    assert "admitted_per_second" in frames[0]["events"][0]


def test_stats_watch_draws_a_table_in_place_on_a_terminal(cluster: Cluster, event: str) -> None:
    ok(cluster, "event", "put", event)
    main_fd, child_fd = os.openpty()
    seen = b""
    with subprocess.Popen(
        [CLI, "stats", "--watch", "--interval", "0.2"], env=cluster.env, stdout=child_fd, stderr=subprocess.DEVNULL
    ) as proc:
        os.close(child_fd)
        try:
            while seen.count(b"\x1b[2J") < 2:
                assert select.select([main_fd], [], [], 15)[0], f"no screen after {seen!r}"
                seen += os.read(main_fd, 65536)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(main_fd)
    # the last frame may still be arriving when the second clear is seen: read the first whole one
    screen = seen.decode().split("\x1b[H\x1b[2J")[1]
    assert "Ctrl-C to stop" in screen
    assert any(line.startswith(event + " ") for line in screen.splitlines())


def test_a_wrong_token_is_the_apis_401(cluster: Cluster) -> None:
    error = refused(cluster, "event", "list", WR_ADMIN_TOKEN="not-the-token")
    assert error == "error: unauthorized: a valid admin bearer token is required\n"
    assert "WR_ADMIN_TOKEN is not set" in refused(cluster, "stats", WR_ADMIN_TOKEN="")


def test_an_unreachable_api_names_the_url(cluster: Cluster) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error = refused(cluster, "event", "list", code=1, WR_PUBLIC_URL=url)
    assert error.startswith(f"error: cannot reach the waiting room at {url} (WR_PUBLIC_URL): ")
    assert "refused" in error.lower()
