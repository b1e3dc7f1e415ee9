"""`status`: every drop the ledger knows, and the counts per state."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from watcher.cli.args import config_arg
from watcher.cli.exits import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="show every drop the ledger knows, and counts per state")
    config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--state", action="append", help="only drops in this state (repeatable)")
    p.set_defaults(func=cmd_status)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_status(args: argparse.Namespace) -> int:
    from watcher.config import load_config
    from watcher.ledger import Ledger, ledger_path

    config = load_config(args.config)
    ledger = Ledger.open_readonly(ledger_path(config.state_dir))
    try:
        drops = ledger.all_drops()
        counts = ledger.counts()
    finally:
        ledger.close()
    if args.state:
        drops = [d for d in drops if d.state in set(args.state)]
    now = time.time()
    waiting = _waiting_for_schedule(config, drops, now)
    if args.json:
        out = {
            "counts": counts,
            "drops": [
                {
                    "id": d.id,
                    "rule": d.rule,
                    "drop": d.drop,
                    "state": str(d.state),
                    "run_id": d.run_id,
                    "run_status": d.run_status,
                    "attempts": d.attempts,
                    "age_seconds": round(now - d.created_at, 3),
                    "last_error": d.last_error,
                    "input_dir": d.input_dir,
                    "batch_id": d.batch_id,
                    "results": d.results_state,
                    "results_path": d.results_path,
                    "results_error": d.results_error,
                    "waiting_for_schedule": waiting.get(d.id),
                }
                for d in drops
            ],
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    header = ("DROP_ID", "RULE", "DROP", "STATE", "RUN_ID", "RUN_STATUS", "AGE", "LAST_ERROR")
    rows = [
        (
            d.id,
            d.rule,
            d.drop.replace("\n", "\\n"),
            str(d.state),
            d.run_id or "-",
            d.run_status or "-",
            _age(now - d.created_at),
            _reason(d, waiting.get(d.id)).replace("\n", " ")[:80],
        )
        for d in drops
    ]
    print(_table(header, rows))
    print()
    print("  ".join(f"{state}={n}" for state, n in sorted(counts.items())) or "no drops yet")
    return EXIT_OK


def _reason(d: Any, waiting: dict[str, str] | None = None) -> str:
    """What `status` says about a drop: its last error, or why its results are not saved, or
    that it waits for its rule's active_hours."""
    if d.results_state == "pending" and d.results_error:
        return f"results not saved ({d.results_attempts} tries): {d.results_error}"
    if waiting is not None:
        last = f"; last error: {d.last_error}" if d.last_error else ""
        return waiting["note"] + last
    return str(d.last_error or "-")


def _waiting_for_schedule(config: Any, drops: Sequence[Any], now: float) -> dict[str, Any]:
    """drop id -> {"opens_at", "note"} for each `ready` drop whose rule is outside its
    active_hours now (the daemon submits it when the rule opens)."""
    from watcher.config.schedule import next_opening, opening_note

    when = datetime.fromtimestamp(now, UTC)
    by_rule: dict[str, dict[str, str] | None] = {}
    for rule in config.rules:
        note = opening_note(rule.active_hours, when)
        if note is not None:
            opens = next_opening(rule.active_hours, when)
            by_rule[rule.name] = {"opens_at": opens.isoformat(), "note": note}
    return {d.id: by_rule[d.rule] for d in drops if d.state == "ready" and by_rule.get(d.rule)}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header]]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
