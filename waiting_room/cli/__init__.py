"""The command line: run a role, or operate events over the admin API."""

from waiting_room.cli.main import main

__all__ = ["main"]
