"""`status`: every drop the ledger knows, counts at the top; `--watch` redraws it in place."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from watcher.cli.args import config_arg
from watcher.cli.exits import EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.ledger import HostBeat
    from watcher.model import Drop

DEFAULT_WATCH_S = 2.0
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="show every drop the ledger knows, and counts per state")
    config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--state", action="append", help="only drops in this state (repeatable)")
    p.add_argument("--rule", action="append", help="only drops of this rule (repeatable)")
    p.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=DEFAULT_WATCH_S,
        metavar="SECONDS",
        help=f"redraw every SECONDS (default {DEFAULT_WATCH_S:g}) until Ctrl-C",
    )
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from watcher.config import load_config

    config = load_config(args.config)
    if args.watch is None:
        drops, hosts = _read(config)
        problem = _unknown_rules(args.rule, config, drops)
        if problem is not None:
            print(f"aihub-watcher: {problem}", file=sys.stderr)
            return EXIT_INVALID
        print(_output(args, config, drops, hosts))
        return EXIT_OK
    if args.watch <= 0:
        print("aihub-watcher: --watch needs a positive number of seconds", file=sys.stderr)
        return EXIT_INVALID
    return _watch(args, config)


def _read(config: Config) -> tuple[list[Drop], list[HostBeat]]:
    """Every drop in the config's ledger (SQLite or PostgreSQL), read-only, and the hosts
    that share it (none on SQLite).

    Raises:
        LedgerError: no ledger there, or not readable.
    """
    from watcher.app.ledgers import open_ledger

    with open_ledger(config, readonly=True) as ledger:
        return ledger.all_drops(), ledger.hosts()


def _unknown_rules(wanted: list[str] | None, config: Config, drops: list[Drop]) -> str | None:
    known = {r.name for r in config.rules} | {d.rule for d in drops}
    unknown = sorted(set(wanted or ()) - known)
    if not unknown:
        return None
    names = ", ".join(repr(r) for r in unknown)
    return f"unknown rule {names}; known rules: {', '.join(sorted(known)) or '(none)'}"


def _output(
    args: argparse.Namespace, config: Config, drops: list[Drop], hosts: Sequence[HostBeat] = ()
) -> str:
    from watcher.cli.status_view import as_json, render

    if args.rule:
        drops = [d for d in drops if d.rule in set(args.rule)]
    shown = [d for d in drops if d.state in set(args.state)] if args.state else drops
    now = time.time()
    waiting = _waiting_for_schedule(config, shown, now)
    alive = {h.host_id: h.alive(now, config.state.lease_seconds) for h in hosts}
    if args.json:
        return json.dumps(
            as_json(drops, shown, now, waiting=waiting, hosts=hosts, alive=alive), indent=2
        )
    return render(drops, shown, now, waiting=waiting, hosts=hosts, alive=alive)


def _waiting_for_schedule(
    config: Config, drops: Sequence[Drop], now: float
) -> dict[str, dict[str, str]]:
    """drop id -> {"opens_at", "note"} for each `ready` drop whose rule is outside its
    active_hours now (the daemon submits it when the rule opens)."""
    from watcher.config.schedule import next_opening, opening_note

    when = datetime.fromtimestamp(now, UTC)
    by_rule: dict[str, dict[str, str]] = {}
    for rule in config.rules:
        note = opening_note(rule.active_hours, when)
        if note is not None:
            opens = next_opening(rule.active_hours, when)
            by_rule[rule.name] = {"opens_at": opens.isoformat(), "note": note}
    return {d.id: by_rule[d.rule] for d in drops if d.state == "ready" and d.rule in by_rule}


def _watch(args: argparse.Namespace, config: Config) -> int:
    """Redraw until Ctrl-C: in place on a terminal, one snapshot after another otherwise."""
    from watcher.errors import LedgerError

    try:
        first, _ = _read(config)
    except LedgerError:
        first = []  # the daemon has not created it yet: redraw until it does
    problem = _unknown_rules(args.rule, config, first)
    if problem is not None:
        print(f"aihub-watcher: {problem}", file=sys.stderr)
        return EXIT_INVALID
    tty = sys.stdout.isatty()
    # Ctrl-C ends it even when started from a shell that ignores SIGINT in its background jobs
    # (a script's `... &`): Python raises KeyboardInterrupt only under its own handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            stamp = datetime.now().strftime("%H:%M:%S")
            head = f"every {args.watch:g}s, {stamp} (Ctrl-C to quit)"
            try:
                body = _output(args, config, *_read(config))
            except LedgerError as exc:
                body = f"no ledger to show yet: {exc}"
            text = body if args.json else f"{head}\n\n{body}"
            sys.stdout.write((CLEAR if tty else "") + text + "\n" + ("" if tty else "\n"))
            sys.stdout.flush()
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return EXIT_OK
