"""A small shop whose checkout is protected by the waiting room.

The shop knows nothing about queues: its checkout is ordinary Starlette
code. One wrapper, `AdmissionGate`, lets only admitted visitors reach
`/checkout` (and everything below it); the catalogue stays open to all.

    SHOP_GATE_SECRET=... uvicorn app:app --port 8001      (or: python run.py)
"""

from __future__ import annotations

import html
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from waiting_room.gate import AdmissionGate

WAITING_ROOM_URL = os.environ.get("SHOP_WAITING_ROOM_URL", "http://127.0.0.1:8000")
EVENT = os.environ.get("SHOP_EVENT", "demo")
PRODUCTS = {"1": ("Limited sneakers", 129), "2": ("Concert ticket", 59), "3": ("Coupon pack", 5)}

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Example shop</title>
<style>body{{font:1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}
button{{font:inherit;padding:.4rem 1rem}}</style></head>
<body><p><a href="/">Example shop</a></p><h1>{title}</h1>{body}</body></html>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(LAYOUT.format(title=html.escape(title), body=body), status)


async def home(request: Request) -> Response:
    items = "".join(f"<li>{html.escape(name)} — {price} €</li>" for name, price in PRODUCTS.values())
    return page(
        "Spring sale",
        f"<ul>{items}</ul><p>The sale is busy: <a href='/checkout'>go to the checkout</a> "
        "and you may be asked to wait your turn.</p>",
    )


async def checkout(request: Request) -> Response:
    options = "".join(f"<option value='{pid}'>{html.escape(name)}</option>" for pid, (name, _) in PRODUCTS.items())
    return page(
        "Checkout",
        f"<form method='post' action='/checkout/pay'><label>Product <select name='product'>{options}"
        "</select></label> <button>Pay</button></form>",
    )


async def pay(request: Request) -> Response:
    form = await request.form()
    name, price = PRODUCTS.get(str(form.get("product")), PRODUCTS["1"])
    # releasing the gate session frees our place at once for the next person in line
    return page(
        "Thank you",
        f"<p>Your order of {html.escape(name)} ({price} €) is placed.</p>"
        "<form method='post' action='/.waiting-room/release'><button>Leave the checkout</button></form>",
    )


async def orders_api(request: Request) -> Response:
    """The same checkout for the shop's mobile app: JSON in, JSON out."""
    body = await request.json()
    name, price = PRODUCTS.get(str(body.get("product")), PRODUCTS["1"])
    return JSONResponse({"status": "placed", "product": name, "price": price}, 201)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


shop = Starlette(
    routes=[
        Route("/", home),
        Route("/checkout", checkout),
        Route("/checkout/pay", pay, methods=["POST"]),
        Route("/checkout/api/orders", orders_api, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)

app = AdmissionGate(
    shop,
    waiting_room_url=WAITING_ROOM_URL,  # the waiting room's WR_PUBLIC_URL
    guard={"/checkout": EVENT},  # /checkout and everything below it; the rest of the shop stays open
    secret=os.environ["SHOP_GATE_SECRET"],  # signs the gate's session cookie; keep it out of the code
)
