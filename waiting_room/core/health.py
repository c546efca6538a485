"""The promoters' health reports: what each writes every second, and which are alive. Pure.

Every web process's /metrics and `waiting-room promoter --check` read them
(through store/events.py), so neither needs the promoter's code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

REPORT_SECONDS = 1.0  # how often a promoter writes its report
REPORT_MAX_AGE_SECONDS = 10.0  # an older report is a dead (or cut off) promoter's


@dataclass(frozen=True)
class PromoterReport:
    at: float  # unix seconds, the promoter's clock
    leading: tuple[str, ...]
    tick_seconds: float  # the slowest tick since the previous report

    def encode(self) -> str:
        return json.dumps({"at": self.at, "leading": list(self.leading), "tick_seconds": self.tick_seconds})

    @classmethod
    def decode(cls, text: str) -> PromoterReport:
        data = json.loads(text)
        return cls(float(data["at"]), tuple(str(e) for e in data.get("leading", [])), float(data["tick_seconds"]))


def live_reports(raw: Mapping[str, str], now: float) -> dict[str, PromoterReport]:
    """The reports of promoters alive now (written within REPORT_MAX_AGE_SECONDS), by id."""
    live = {}
    for owner, text in raw.items():
        try:
            report = PromoterReport.decode(text)
        except (ValueError, KeyError, TypeError):
            continue
        if now - report.at <= REPORT_MAX_AGE_SECONDS:
            live[owner] = report
    return live
