"""Prometheus metrics of a web process, on its own registry.

Per-event figures (waiting, active, counters) come from Redis at scrape
time, so every web process reports the same truth; per-process figures
(sockets, fan-out lag) come from the hub.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.responses import Response

if TYPE_CHECKING:
    from waiting_room.store.events import Events
    from waiting_room.web.hub import Hub

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.registry = CollectorRegistry()
        r = self.registry
        self.joins = Counter(
            "wr_joins", "Join requests answered, by whether a ticket was issued", ["event", "new"], registry=r
        )
        self._joins: dict[tuple[str, bool], Counter] = {}
        self.redemptions = Counter("wr_redemptions", "Tokens redeemed through this process", ["event"], registry=r)
        self.event_totals = Gauge(
            "wr_event_tickets",
            "Tickets of an event by what happened to them (all processes)",
            ["event", "outcome"],
            registry=r,
        )
        self.waiting = Gauge("wr_waiting", "Tickets waiting", ["event"], registry=r)
        self.active = Gauge("wr_active", "Admitted-pending plus active sessions", ["event"], registry=r)
        self.max_active = Gauge("wr_max_active", "Configured capacity (0 = no limit)", ["event"], registry=r)
        self.connections = Gauge("wr_process_connections", "Open WebSockets of this process", ["event"], registry=r)
        self.leading = Gauge(
            "wr_promoter_leading", "1 for each event a live promoter leads", ["promoter", "event"], registry=r
        )
        self.tick = Gauge(
            "wr_promoter_tick_seconds", "A live promoter's slowest tick in its last report", ["promoter"], registry=r
        )
        # a leak of per-socket tasks shows here long before it shows in memory (see bench/soak.py)
        self.tasks = Gauge("wr_tasks", "asyncio tasks alive in this process", registry=r)
        self.lag = Histogram(
            "wr_fanout_lag_seconds", "From the promoter's publish to the hub's fan-out", buckets=LAG_BUCKETS, registry=r
        )

    def joined(self, event: str, created: bool) -> None:
        child = self._joins.get((event, created))
        if child is None:  # labels() costs more than the increment: look each child up once
            child = self._joins[(event, created)] = self.joins.labels(event, "true" if created else "false")
        child.inc()

    def redeemed(self, event: str) -> None:
        self.redemptions.labels(event).inc()

    async def render(self, events: Events) -> Response:
        gauges = (
            self.event_totals,
            self.waiting,
            self.active,
            self.max_active,
            self.connections,
            self.leading,
            self.tick,
        )
        for gauge in gauges:
            gauge.clear()  # events and promoters come and go: report only the live ones
        for owner, report in (await events.live_promoters()).items():
            self.tick.labels(owner).set(report.tick_seconds)
            for event in report.leading:
                self.leading.labels(owner, event).set(1)
        for event in await events.ids():
            stats = await events.stats(event)
            if stats is None:
                continue
            for outcome, field in (
                ("issued", "tickets_issued"),
                ("admitted", "served_total"),
                ("redeemed", "redeemed"),
                ("expired", "expired"),
                ("removed", "removed"),
            ):
                self.event_totals.labels(event, outcome).set(stats[field])
            self.waiting.labels(event).set(stats["waiting"])
            self.active.labels(event).set(stats["admitted_pending"] + stats["active"])
            self.max_active.labels(event).set(stats["max_active"])
        for event, room in list(self.hub.rooms.items()):
            self.connections.labels(event).set(len(room.conns))
        self.tasks.set(len(asyncio.all_tasks()))
        while self.hub.stats.fanout_lag:
            self.lag.observe(max(0.0, self.hub.stats.fanout_lag.popleft()))
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
