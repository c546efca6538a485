"""GET /openapi.json describes every API call the web process serves, and a property-based fuzzer
(Schemathesis) finds no answer outside it: no 5xx, no undocumented status, body or content type."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route
from support.cluster import Cluster, running, write_ed25519_key

from waiting_room.core.event_settings import FIELDS
from waiting_room.settings import Settings
from waiting_room.web.app import create_app
from waiting_room.web.openapi import DESCRIPTION

API_PREFIXES = ("/api/", "/.well-known/")
API_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
CATCH_ALL = "/api/admin/{rest:path}"  # answers 404 to any other admin path: not a call of its own
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
FUZZ_SEED = 20261202
FUZZ_EXAMPLES = 100  # per operation and phase: over 2,000 requests in all
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("openapi"), webs=1, promoters=1) as made:
        yield made


def served_calls(tmp_path: Path) -> set[tuple[str, str]]:
    write_ed25519_key(tmp_path / "key.pem")
    env = {"WR_REDIS_URL": "redis://127.0.0.1:1/0", "WR_SIGNING_KEY": str(tmp_path / "key.pem")}
    app = create_app(Settings.from_env(env))  # routes only: its lifespan (and Redis) never starts
    calls = set()
    for route in app.routes:
        if not isinstance(route, Route) or route.path == CATCH_ALL:
            continue
        if route.path.startswith(API_PREFIXES) or route.path in API_PATHS:
            calls |= {(method.lower(), route.path) for method in route.methods or () if method != "HEAD"}
    return calls


def described_calls(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_the_description_names_exactly_the_calls_served(cluster: Cluster, tmp_path: Path) -> None:
    r = cluster.http.get(cluster.url("/openapi.json"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    document = r.json()
    assert document == DESCRIPTION and document["openapi"].startswith("3.1")
    assert described_calls(document) == served_calls(tmp_path)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "default" not in operation["responses"], f"{method} {path}: every answer is spelled out"
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"
            if path.startswith("/api/admin/"):
                assert operation["security"] == [{"admin": []}] and "401" in operation["responses"]


def test_the_settings_schema_names_every_setting() -> None:
    changes = DESCRIPTION["components"]["schemas"]["EventSettingsChanges"]
    assert set(changes["properties"]) == FIELDS
    assert set(DESCRIPTION["components"]["schemas"]["EventSettings"]["required"]) == FIELDS


@pytest.mark.slow
def test_schemathesis_finds_no_answer_outside_the_description(cluster: Cluster, tmp_path: Path) -> None:
    """Coverage, fuzzing and stateful phases with the admin token, seeded; every request is counted."""
    har = tmp_path / "requests.har"
    argv = [
        SCHEMATHESIS,
        "run",
        cluster.url("/openapi.json"),
        "--header",
        f"Authorization: Bearer {cluster.admin_token}",
        "--checks",
        CHECKS,
        "--phases",
        "coverage,fuzzing,stateful",
        "--seed",
        str(FUZZ_SEED),
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--workers",
        "1",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        "--report",
        "har",
        "--report-har-path",
        str(har),
    ]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(entry["response"]["status"] for entry in entries)
    assert sum(statuses.values()) >= 2000, statuses
    assert not [s for s in statuses if s >= 500 or s == 0], statuses
