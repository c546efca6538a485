"""The join's hand-written wr_uid cookie is exactly what Starlette's set_cookie writes."""

from __future__ import annotations

import secrets

import pytest
from starlette.responses import Response

from waiting_room.web.public import UID_COOKIE, UID_MAX_AGE, uid_cookie


@pytest.mark.parametrize("secure", [False, True])
def test_uid_cookie_matches_set_cookie(secure: bool) -> None:
    uid = secrets.token_urlsafe(18)
    reference = Response()
    reference.set_cookie(UID_COOKIE, uid, max_age=UID_MAX_AGE, httponly=True, samesite="lax", secure=secure)
    assert [h for h in reference.raw_headers if h[0] == b"set-cookie"] == [uid_cookie(uid, secure)]
