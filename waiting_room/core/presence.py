"""Abandonment records departures, not presence.

A waiting ticket is "departed" from its join until a socket for it connects,
and again from when that socket closes, or from its web process's last
heartbeat if the process died; a status poll moves the moment forward. The
promoter removes tickets departed for longer than `abandon_after_seconds`.
A connected holder costs nothing while it waits: each web process writes
one heartbeat per event it holds sockets for every HEARTBEAT_SECONDS, and a
process silent for LAPSE_SECONDS is taken for dead — its holders depart as
of its last heartbeat (reap.lua), once. A process that was only stalled
finds its heartbeat entry gone and holds its sockets again.
"""

from __future__ import annotations

HEARTBEAT_SECONDS = 2.0
LAPSE_SECONDS = 15.0  # seven missed heartbeats: a long GC pause or an overloaded loop (6 s seen) is not a death
