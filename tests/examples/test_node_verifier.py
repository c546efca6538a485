"""examples/node-verifier: a Node backend verifies a real admission token with `jose` from the npm registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.cluster import Cluster, running

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("deadline")]

EXAMPLE = Path(__file__).parents[2] / "examples" / "node-verifier"


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed from its lockfile into a scratch copy (the repo stays free of node_modules)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("WR_REQUIRE_NODE"):
            pytest.fail("node and npm are required here (WR_REQUIRE_NODE is set)")
        pytest.skip("node/npm not installed: the Node verifier example cannot run (.ci/run installs them)")
    work = tmp_path_factory.mktemp("node-verifier")
    for name in ("package.json", "package-lock.json", "verify.mjs"):
        shutil.copy(EXAMPLE / name, work / name)
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=work, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return work


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("node")) as cluster:
        yield cluster


def verify(verifier: Path, cluster: Cluster, event: str, token: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        ["node", "verify.mjs", cluster.public_url, event, token],
        cwd=verifier,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


def test_node_verifies_a_real_token_and_refuses_bad_ones(verifier: Path, cluster: Cluster, event_id: str) -> None:
    cluster.put_event(event_id)
    ticket = cluster.join(event_id)["ticket"]
    token = cluster.wait_state(ticket, "admitted")["token"]

    status, result = verify(verifier, cluster, event_id, token)
    assert status == 0, result
    assert result["valid"] is True and result["ticket"] == ticket and result["event"] == event_id

    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    expired = jwt.encode({**claims, "exp": claims["iat"] - 1}, cluster.key, algorithm="EdDSA", headers={"kid": kid})
    for bad, event, code in [
        (forged, event_id, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"),
        (expired, event_id, "ERR_JWT_EXPIRED"),
        (token, "another-event", "ERR_JWT_CLAIM_VALIDATION_FAILED"),
    ]:
        status, result = verify(verifier, cluster, event, bad)
        assert status == 1 and result == {**result, "valid": False, "code": code}
