"""How the gate reads the waiting room's answers: only a 200 spends a token; anything unclear is 503.

The waiting room here is an httpx transport answering as the contract says
(the real one is in test_gate_system.py); what is under test is the reading.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from waiting_room.core.tokens import TokenError
from waiting_room.gate.upstream import Unavailable, WaitingRoom

Handler = Callable[[httpx.Request], httpx.Response]


def room(handler: Handler) -> WaitingRoom:
    return WaitingRoom("http://wr.test", httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def answer(status: int, body: object = None) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def refusal(code: str) -> dict[str, object]:
    return {"error": {"code": code, "message": code.replace("_", " ")}}


async def test_a_200_gives_the_session_expiry() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"event": "e", "ticket": "e.x", "session_expires_at": 1234.5})

    assert await room(handler).redeem("t0k") == 1234.5
    assert seen[0].method == "POST" and str(seen[0].url) == "http://wr.test/api/redeem"
    assert seen[0].content == b'{"token":"t0k"}'


@pytest.mark.parametrize(("status", "code"), [(401, "invalid_token"), (401, "token_expired"), (409, "token_used")])
async def test_the_contracts_refusals_are_passed_on(status: int, code: str) -> None:
    with pytest.raises(TokenError) as refused:
        await room(answer(status, refusal(code))).redeem("t")
    assert refused.value.code == code


@pytest.mark.parametrize(
    "handler",
    [
        answer(500, refusal("unavailable")),
        answer(503, refusal("unavailable")),
        answer(429, refusal("rate_limited")),
        answer(200, {"session_expires_at": "soon"}),
        answer(200, ["not", "an", "object"]),
        answer(404, refusal("not_found")),  # a wrong waiting_room_url: nothing was decided
        lambda request: httpx.Response(502, text="<html>bad gateway</html>"),
    ],
)
async def test_anything_else_is_unavailable_and_spends_nothing(handler: Handler) -> None:
    with pytest.raises(Unavailable):
        await room(handler).redeem("t")


async def test_an_unreachable_waiting_room_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unavailable):
        await room(refuse).redeem("t")
    with pytest.raises(Unavailable):
        await room(refuse).jwks()
    with pytest.raises(Unavailable):
        await room(refuse).release("t")


async def test_release_treats_an_already_ended_session_as_done() -> None:
    await room(answer(204)).release("t")
    await room(answer(401, refusal("no_session"))).release("t")
    with pytest.raises(Unavailable):
        await room(answer(503)).release("t")
