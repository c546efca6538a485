"""The admin API's work from a terminal (`event`, `notice`, `stats`), over HTTP with the same auth."""

from __future__ import annotations

import argparse
from typing import Any

from waiting_room.settings import Settings


def add_commands(sub: Any) -> None:
    """Filled in by the operators' commands."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    print(f"error: unknown command {args.command}")
    return 2
