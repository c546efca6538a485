"""The admin API's work from a terminal (`event`, `notice`, `stats`), over HTTP with the same auth.

These commands are thin clients of the admin HTTP API at WR_PUBLIC_URL, not a
second path to Redis: auth, validation and error messages are the API's, so an
operator sees the same answer in the terminal as on the dashboard. urllib from
the standard library keeps the command line free of runtime dependencies.

Exit codes: 0 done, 2 the request was refused (usage, auth, validation: any
4xx), 1 the API could not be reached or failed (5xx).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import quote

from waiting_room.settings import Settings

HTTP_TIMEOUT_SECONDS = 10.0
CLEAR_SCREEN = "\x1b[H\x1b[2J"

# CLI option -> setting field, in the order `event put --help` lists them.
SETTING_OPTIONS: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("--title", "title", str, "shown on the waiting page"),
    ("--rate", "rate_per_minute", int, "most tickets admitted per minute"),
    ("--max-active", "max_active", int, "capacity: admitted-pending plus active sessions (0 = no limit)"),
    ("--token-ttl", "token_ttl_seconds", int, "seconds an admission token stays redeemable"),
    ("--session-ttl", "session_ttl_seconds", int, "seconds a redeemed session holds capacity"),
    ("--abandon-after", "abandon_after_seconds", int, "seconds without a socket or poll before removal"),
    ("--opens-at", "opens_at", str, "unix seconds, ISO 8601 (no offset = local time) or 'none'"),
    ("--status", "status", str, "open, paused, sold_out or closed"),
    ("--target-url", "target_url", str, "where an admitted browser is sent"),
    ("--client-joins-per-minute", "client_joins_per_minute", int, "new tickets a minute per client address (0 = off)"),
    ("--client-max-waiting", "client_max_waiting", int, "waiting tickets per client address (0 = off)"),
    ("--pow-difficulty", "pow_difficulty", int, "proof of work at join, in leading zero bits (0 = off)"),
    ("--queue-only-when-full", "queue_only_when_full", bool, "admit at once while nobody waits and there is room"),
    ("--description", "description", str, "plain text under the title on the page ('' clears it)"),
    ("--logo-url", "logo_url", str, "an https:// URL or a path on this server ('' removes it)"),
    ("--accent-color", "accent_color", str, "the page's accent, #rrggbb ('' for the built-in blue)"),
)

STATS_COLUMNS = (
    ("EVENT", "id"),
    ("STATUS", "status"),
    ("WAITING", "waiting"),
    ("PENDING", "admitted_pending"),
    ("ACTIVE", "active"),
    ("SERVED", "served_total"),
    ("ISSUED", "tickets_issued"),
    ("CONNS", "connections"),
    ("RATE/MIN", "rate_per_minute"),
    ("OBSERVED/MIN", "observed_rate_per_minute"),
)


class CliError(Exception):
    """Ends the command with `error: <text>` on stderr and `exit_code`."""

    def __init__(self, text: str, exit_code: int) -> None:
        super().__init__(text)
        self.text = text
        self.exit_code = exit_code


# --- arguments ---------------------------------------------------------------


def add_commands(sub: Any) -> None:
    """Add `event`, `notice` and `stats` to the `waiting-room` parser's subcommands."""
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable JSON instead of a table")

    event = sub.add_parser("event", help="create, change and list events (admin API)")
    actions = event.add_subparsers(dest="action", required=True)
    put = actions.add_parser("put", parents=[as_json], help="create an event or change its settings")
    put.add_argument("event", metavar="EVENT")
    for option, field, kind, text in SETTING_OPTIONS:
        if kind is bool:  # --flag / --no-flag; absent leaves the setting as it is
            put.add_argument(option, dest=field, action=argparse.BooleanOptionalAction, default=None, help=text)
            continue
        metavars = {"title": "T", "opens_at": "WHEN", "status": "S", "description": "TEXT", "accent_color": "#RRGGBB"}
        metavar = "N" if kind is int else metavars.get(field, "U")
        put.add_argument(option, dest=field, type=kind, help=text, metavar=metavar)
    actions.add_parser("list", parents=[as_json], help="every event with its settings and stats")
    status = actions.add_parser("status", parents=[as_json], help="open, pause, sell out or close an event")
    status.add_argument("event", metavar="EVENT")
    status.add_argument("status", metavar="STATUS", help="open, paused, sold_out or closed")

    notice = sub.add_parser(
        "notice",
        parents=[as_json],
        help="broadcast a notice to one event or to all",
        usage="%(prog)s [-h] [--level LEVEL] [--json] (EVENT TEXT | --all TEXT)",
    )
    notice.add_argument("--all", action="store_true", help="to every event")
    notice.add_argument("--level", default="info", help="info (default), warning or critical")
    notice.add_argument("words", nargs="+", metavar="EVENT TEXT", help=argparse.SUPPRESS)

    stats = sub.add_parser("stats", parents=[as_json], help="live numbers of one event or of all")
    stats.add_argument("event", nargs="?", metavar="EVENT")
    stats.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    stats.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between refreshes")


def run(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        client = AdminClient(settings.public_url, settings.admin_token)
        if args.command == "event":
            return _event(client, args, out)
        if args.command == "notice":
            return _notice(client, args, out)
        if args.command == "stats":
            return _stats(client, args, out)
        raise CliError(f"unknown command {args.command}", 2)
    except CliError as exc:
        print(f"error: {exc.text}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0


# --- HTTP --------------------------------------------------------------------


class AdminClient:
    """JSON over HTTP to the admin API; every failure becomes a CliError with the API's own words."""

    def __init__(self, base_url: str, token: str) -> None:
        if not token:
            raise CliError("WR_ADMIN_TOKEN is not set (the admin API needs its bearer token)", 2)
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _api_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"cannot reach the waiting room at {self.base_url} (WR_PUBLIC_URL): {reason}", 1) from None
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise CliError(f"{url} did not answer JSON; is WR_PUBLIC_URL the waiting room?", 1) from None


def _api_error(exc: urllib.error.HTTPError) -> CliError:
    """`<code>: <message>` from the contract's error body, or the HTTP status when a proxy answered."""
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    code, message = f"http_{exc.code}", str(exc.reason)
    try:
        error = json.loads(raw)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    return CliError(f"{code}: {message}", 2 if 400 <= exc.code < 500 else 1)


def _event_path(event: str) -> str:
    return "/api/admin/events/" + quote(event, safe="")


# --- commands ----------------------------------------------------------------


def _event(client: AdminClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "list":
        body = client.call("GET", "/api/admin/events")
        if args.json:
            _print_json(body, out)
        else:
            out.write(events_table(body.get("events", [])))
        return 0
    if args.action == "put":
        changes = {
            field: getattr(args, field) for _, field, _, _ in SETTING_OPTIONS if getattr(args, field) is not None
        }
        if "opens_at" in changes:
            changes["opens_at"] = parse_opens_at(changes["opens_at"])
        body = client.call("PUT", _event_path(args.event), changes)
    else:
        body = client.call("POST", _event_path(args.event) + "/status", {"status": args.status})
    if args.json:
        _print_json(body, out)
    else:
        out.write(settings_lines(body))
    return 0


def _notice(client: AdminClient, args: argparse.Namespace, out: TextIO) -> int:
    words: list[str] = args.words
    expected = 1 if args.all else 2
    if len(words) != expected:
        usage = "notice --all TEXT" if args.all else "notice EVENT TEXT (or notice --all TEXT)"
        raise CliError(f"usage: waiting-room {usage}; quote a TEXT with spaces", 2)
    text = words[-1]
    if args.all:
        body = client.call("POST", "/api/admin/notices", {"text": text, "level": args.level})
        target = "every event"
    else:
        body = client.call("POST", _event_path(words[0]) + "/notices", {"text": text, "level": args.level})
        target = words[0]
    if args.json:
        _print_json(body, out)
    else:
        out.write(f"sent {body['level']} notice {body['id']} to {target}: {body['text']}\n")
    return 0


def _stats(client: AdminClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.interval <= 0 or not math.isfinite(args.interval):
        raise CliError("--interval must be a positive number of seconds", 2)

    def sample() -> list[dict[str, Any]]:
        if args.event:
            return [{"id": args.event, **client.call("GET", _event_path(args.event) + "/stats")}]
        return [{"id": e["id"], **e["stats"]} for e in client.call("GET", "/api/admin/events")["events"]]

    if not args.watch:
        rows = sample()
        if args.json:
            _print_json(rows[0] if args.event else {"events": rows}, out)
        else:
            out.write(stats_table(rows))
        return 0
    return _watch(sample, args.interval, args.json, out)


def _watch(sample: Callable[[], list[dict[str, Any]]], interval: float, as_json: bool, out: TextIO) -> int:
    """Redraw until Ctrl-C. A refused request ends it; an unreachable API is shown and retried,
    because an incident is exactly when the web tier may blink."""
    in_place = out.isatty() and not as_json
    previous: dict[str, tuple[float, int]] = {}
    next_at = time.monotonic()
    try:
        while True:
            now = time.time()
            try:
                rows = sample()
                problem = ""
            except CliError as exc:
                if exc.exit_code == 2:
                    raise
                rows, problem = [], exc.text
            for row in rows:
                served = int(row.get("served_total", 0))
                if row["id"] in previous:
                    at, before = previous[row["id"]]
                    row["admitted_per_second"] = round((served - before) / max(now - at, 1e-6), 2)
                previous[row["id"]] = (now, served)
            if as_json:
                _print_json(
                    {"at": round(now, 3), "events": rows, **({"error": problem} if problem else {})}, out, compact=True
                )
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(now))
                screen = f"waiting-room stats   {stamp}   every {interval:g} s, Ctrl-C to stop\n\n"
                screen += f"error: {problem} (retrying)\n" if problem else stats_table(rows, with_speed=True)
                out.write((CLEAR_SCREEN if in_place else "") + screen + ("" if in_place else "\n"))
            out.flush()
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        out.write("\n")
        return 0


# --- formatting ----------------------------------------------------------------


def parse_opens_at(value: str) -> float | None:
    """`none`, unix seconds, or ISO 8601 (an offset-less time is the terminal's local time)."""
    text = value.strip()
    if text.lower() in ("none", "null", ""):
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise CliError(f"--opens-at must be unix seconds, ISO 8601 or 'none', got {value!r}", 2) from None


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned text, right-aligned numbers; an empty table says so."""
    if not rows:
        return "(no events)\n"
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) and not isinstance(row[i], bool) for row in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str], heading: bool = False) -> str:
        parts = [
            v.rjust(w) if numeric[i] and not heading else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip() + "\n"

    return line(headers, heading=True) + "".join(line(r) for r in cells)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() else f"{value:.1f}"
    return str(value)


def stats_table(rows: Sequence[dict[str, Any]], with_speed: bool = False) -> str:
    columns = list(STATS_COLUMNS)
    if with_speed:
        columns.append(("ADMITTED/S", "admitted_per_second"))
    return table([c[0] for c in columns], [[row.get(key) for _, key in columns] for row in rows])


def events_table(events: Sequence[dict[str, Any]]) -> str:
    headers = ["EVENT", "STATUS", "TITLE", "RATE/MIN", "MAX ACTIVE", "WAITING", "ACTIVE", "SERVED", "CONNS"]
    rows = []
    for e in events:
        s, st = e["settings"], e.get("stats") or {}
        active = st.get("admitted_pending", 0) + st.get("active", 0)
        rows.append(
            [
                e["id"],
                s["status"],
                _short(s["title"], 40),
                s["rate_per_minute"],
                s["max_active"] or "none",
                st.get("waiting"),
                active,
                st.get("served_total"),
                st.get("connections"),
            ]
        )
    return table(headers, rows)


def settings_lines(body: dict[str, Any]) -> str:
    width = max(len(k) for k in body)
    lines = []
    for key, value in body.items():
        if key == "opens_at" and value is not None:
            when = datetime.fromtimestamp(value).astimezone().isoformat(timespec="seconds")
            value = f"{value:.0f} ({when})" if float(value).is_integer() else f"{value:.3f} ({when})"
        lines.append(f"{key.ljust(width)}  {_cell(value)}\n")
    return "".join(lines)


def _short(text: str, longest: int) -> str:
    return text if len(text) <= longest else text[: longest - 1] + "…"


def _print_json(body: Any, out: TextIO, compact: bool = False) -> None:
    out.write(json.dumps(body, ensure_ascii=False, indent=None if compact else 2) + "\n")
