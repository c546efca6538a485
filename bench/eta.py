"""ETA error: the `eta_seconds` pushed to each socket against when the ticket was really admitted.

A fresh stack, a paused event at a steady rate (default 120/min, tick 500 ms:
one admission a tick), `--tickets` tickets joined over HTTP, one socket each,
then the event opens and runs until every ticket is admitted. For every
ticket, the ETA it was shown at a few moments is compared with its actual
admission (the receipt of its `admitted` message):

  * first ETA: its first `position` message with a non-null ETA;
  * +2 s, +5 s, +10 s, +30 s, +60 s: the last `position` it had received by then;
  * rate stable: the same, one second after the observed rate (the ETA's
    input, carried by each `advance`) first came within 5 % of the rate.

Only tickets still waiting at a moment count for it.

predicted admission = receipt of that message + eta_seconds;
error = |predicted - actual|, relative error = error / (actual - receipt).

    python -m bench.eta
    python -m bench.eta --rate 60 --tickets 100
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

import httpx

from bench.clients import ClientPool, SocketRecord
from bench.common import (
    BusTap,
    Stack,
    install_deadline,
    join,
    percentile,
    print_machine,
    raise_nofile,
    table,
)

CHECKPOINTS = (2.0, 5.0, 10.0, 30.0, 60.0)  # the first seconds are where a young average errs
STABLE = 0.05  # the observed rate is "stable" once within 5 % of the configured one


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1%}"


def samples(records: list[SocketRecord], t_open: float, checkpoint: float | None) -> list[tuple[float, float]]:
    """(absolute error s, actual wait s) per ticket still waiting at a checkpoint (None: its first ETA)."""
    out = []
    for rec in records:
        if not rec.admitted_at or (checkpoint is not None and rec.admitted_at <= t_open + checkpoint):
            continue
        shown = [(t, eta) for t, _, _, eta, _ in rec.positions if eta is not None and t >= t_open]
        pick = shown[:1] if checkpoint is None else [p for p in shown if p[0] <= t_open + checkpoint][-1:]
        if not pick or pick[0][0] >= rec.admitted_at:
            continue
        t, eta = pick[0]
        actual = rec.admitted_at - t
        out.append((abs(t + eta - rec.admitted_at), actual))
    return out


async def run(args: argparse.Namespace, deadline: float) -> None:
    with Stack(tick_ms=args.tick_ms) as stack:
        tap = BusTap(stack.redis_url)
        async with httpx.AsyncClient(timeout=30) as http:
            await stack.put_event(http, status="paused", rate_per_minute=args.rate, abandon_after_seconds=3600)
            tickets, _, via = await join(stack, args.tickets, args.join_via)
            await tap.start()
            with ClientPool(stack, [t for t, _ in tickets], 1, 32, max_seconds=deadline - time.time() - 10) as pool:
                attached = await pool.wait_connected()
                print(f"  {len(tickets)} tickets joined via {via}, {attached} sockets attached", flush=True)
                await stack.set_status(http, "open")
                t_open = time.time()
                while time.time() < deadline - 15:
                    await asyncio.sleep(1)
                    if tap.advances and tap.advances[-1].served >= args.tickets:
                        break
                await asyncio.sleep(1)
                records, _ = await pool.results()
        await tap.stop()

    admitted = [r for r in records if r.admitted_at]
    span = max(r.admitted_at for r in admitted) - t_open if admitted else math.nan
    print(
        f"\n## ETA error (rate {args.rate}/min, tick {args.tick_ms} ms, {args.tickets} tickets, "
        f"{len(admitted)} admitted in {span:.1f} s = {len(admitted) / span * 60:.1f}/min)\n"
    )
    stable = next(
        (
            a.at - t_open
            for a in tap.advances
            if a.at >= t_open and abs(a.observed_rate - args.rate) <= STABLE * args.rate
        ),
        None,
    )
    points: list[tuple[str, float | None]] = [("first ETA shown", None)]
    points += [(f"+{c:.0f} s after opening", c) for c in CHECKPOINTS]
    if stable is not None:
        points.append((f"rate stable (+{stable:.0f} s)", stable + 1))
    rows = []
    for label, checkpoint in points:
        s = samples(records, t_open, checkpoint)
        if not s:
            continue
        errors = [e for e, _ in s]
        rel = [e / a for e, a in s if a > 0]
        rel_long = [e / a for e, a in s if a >= 10]
        rows.append(
            [
                label,
                len(s),
                percentile([a for _, a in s], 50),
                percentile(errors, 50),
                percentile(errors, 90),
                max(errors),
                pct(percentile(rel, 50)),
                pct(percentile(rel, 90)),
                f"{pct(percentile(rel_long, 50))} / {pct(percentile(rel_long, 90))}",
            ]
        )
    print(
        table(
            [
                "when",
                "tickets",
                "actual wait p50 s",
                "|error| p50 s",
                "|error| p90 s",
                "|error| max s",
                "relative p50",
                "relative p90",
                "relative p50/p90 (waits >= 10 s)",
            ],
            rows,
        )
    )
    first = next((a for a in tap.advances if a.observed_rate > 0), None)
    rates = [a.observed_rate for a in tap.advances if a.at >= t_open + 10 and a.waiting > 0]
    print(
        f"\nobserved rate (the ETA's input): first {first.observed_rate if first else math.nan:.1f}/min "
        f"{(first.at - t_open) if first else math.nan:.1f} s after opening; after 10 s: "
        f"min {min(rates, default=math.nan):.1f}, median {percentile(rates, 50):.1f}, "
        f"max {max(rates, default=math.nan):.1f} /min"
    )
    nulls = sum(
        1 for r in records for t, _, pos, eta, _ in r.positions if t >= t_open and pos is not None and eta is None
    )
    print(f"position messages after opening with eta_seconds null: {nulls}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=200, help="tickets queued (default 200)")
    parser.add_argument("--rate", type=int, default=120, help="rate_per_minute (default 120)")
    parser.add_argument("--tick-ms", type=int, default=500, help="WR_TICK_MS (default 500)")
    parser.add_argument("--join-via", choices=("auto", "http", "lua"), default="auto")
    parser.add_argument("--timeout", type=float, default=175.0, help="hard limit for the whole run, seconds")
    args = parser.parse_args()
    if args.tickets / args.rate * 60 > args.timeout - 30:
        parser.error("the line would not drain within --timeout: fewer --tickets or a higher --rate")
    install_deadline(args.timeout)
    deadline = time.time() + args.timeout
    raise_nofile()
    print_machine()
    asyncio.run(run(args, deadline))


if __name__ == "__main__":
    main()
