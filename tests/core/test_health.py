"""Promoter health reports: their form and which count as alive. Pure."""

from __future__ import annotations

from waiting_room.core.health import REPORT_MAX_AGE_SECONDS, PromoterReport, live_reports


def test_a_report_round_trips() -> None:
    report = PromoterReport(100.5, ("a", "b"), 0.012)
    assert PromoterReport.decode(report.encode()) == report


def test_only_recent_well_formed_reports_are_alive() -> None:
    now = 1000.0
    raw = {
        "fresh": PromoterReport(now - 1, ("demo",), 0.01).encode(),
        "edge": PromoterReport(now - REPORT_MAX_AGE_SECONDS, (), 0.01).encode(),
        "stale": PromoterReport(now - REPORT_MAX_AGE_SECONDS - 0.1, (), 0.01).encode(),
        "junk": "not json",
        "partial": '{"at": 999}',
    }
    assert set(live_reports(raw, now)) == {"fresh", "edge"}
    assert live_reports(raw, now)["fresh"].leading == ("demo",)
