"""How `status` reads on a terminal: counts first, then one row per drop with human ages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from watcher.model import Drop, DropState

HEADER = ("DROP_ID", "RULE", "DROP", "STATE", "RUN_ID", "RUN_STATUS", "AGE", "LAST_ERROR")


def human_age(seconds: float) -> str:
    """42s, 2m 05s, 3h 10m, 4d 2h: two units at most, the second zero-padded below an hour."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def state_counts(drops: Iterable[Drop]) -> dict[str, int]:
    """Drops per state, every state a key (0 when none), in lifecycle order."""
    seen = Counter(str(d.state) for d in drops)
    return {state.value: seen.get(state.value, 0) for state in DropState}


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in counts.items() if n) or "none"


def counts_lines(drops: Sequence[Drop]) -> list[str]:
    """`N drops: state n, ...`, then one line per rule when there are several."""
    if not drops:
        return ["no drops yet"]
    noun = "drop" if len(drops) == 1 else "drops"
    lines = [f"{len(drops)} {noun}: {_counts_text(state_counts(drops))}"]
    rules = sorted({d.rule for d in drops})
    if len(rules) > 1:
        width = max(len(r) for r in rules)
        for rule in rules:
            counts = state_counts(d for d in drops if d.rule == rule)
            lines.append(f"  {rule:<{width}}  {_counts_text(counts)}")
    return lines


Waiting = Mapping[str, Mapping[str, str]]  # drop id -> {"opens_at", "note"} (closed schedule)


def reason(d: Drop, waiting: Mapping[str, str] | None = None) -> str:
    """What `status` says about a drop: its last error, or why its results are not saved, or
    that it waits for its rule's active_hours."""
    if d.results_state == "pending" and d.results_error:
        return f"results not saved ({d.results_attempts} tries): {d.results_error}"
    if waiting is not None:
        last = f"; last error: {d.last_error}" if d.last_error else ""
        return waiting["note"] + last
    return str(d.last_error or "-")


def drop_rows(drops: Sequence[Drop], now: float, waiting: Waiting) -> list[tuple[str, ...]]:
    return [
        (
            d.id,
            d.rule,
            d.drop.replace("\n", "\\n"),
            str(d.state),
            d.run_id or "-",
            d.run_status or "-",
            human_age(now - d.created_at),
            reason(d, waiting.get(d.id)).replace("\n", " ")[:80],
        )
        for d in drops
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header]]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def host_lines(hosts: Sequence[Any], now: float, alive: Mapping[str, bool]) -> list[str]:
    """A shared ledger: one line per host, alive or silent by its last heartbeat."""
    return [
        f"host {h.host_id}: {'alive' if alive[h.host_id] else 'silent'}, "
        f"last heartbeat {human_age(now - h.heartbeat_at)} ago"
        for h in hosts
    ]


def render(
    counted: Sequence[Drop],
    shown: Sequence[Drop],
    now: float,
    *,
    waiting: Waiting,
    hosts: Sequence[Any] = (),
    alive: Mapping[str, bool] | None = None,
) -> str:
    """Counts over `counted` (the rule filter applied) at the top, then the `shown` rows. On a
    shared ledger (`hosts`), the hosts and a HOST column: which one submitted each drop."""
    parts = counts_lines(counted) + host_lines(hosts, now, alive or {})
    if shown:
        header: tuple[str, ...] = HEADER
        rows = drop_rows(shown, now, waiting)
        if hosts:
            header = (*HEADER[:4], "HOST", *HEADER[4:])
            rows = [
                (*r[:4], d.submitted_by or "-", *r[4:]) for r, d in zip(rows, shown, strict=True)
            ]
        parts += ["", table(header, rows)]
    elif counted:
        parts += ["", "no drops in the selected states"]
    return "\n".join(parts)


def as_json(
    counted: Sequence[Drop],
    shown: Sequence[Drop],
    now: float,
    *,
    waiting: Waiting,
    hosts: Sequence[Any] = (),
    alive: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    return {
        "counts": state_counts(counted),
        "counts_by_rule": {
            rule: state_counts(d for d in counted if d.rule == rule)
            for rule in sorted({d.rule for d in counted})
        },
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
                "submitted_by": d.submitted_by,
                "claimed_by": d.claimed_by,
            }
            for d in shown
        ],
        # A shared ledger (PostgreSQL): each host and whether its heartbeat is recent.
        "hosts": [
            {
                "host_id": h.host_id,
                "alive": (alive or {}).get(h.host_id, False),
                "heartbeat_age_seconds": round(now - h.heartbeat_at, 3),
            }
            for h in hosts
        ],
    }
