"""The SQL that reads and writes drop rows on one SQLite connection (the `Rows` of a backend).

Imports only the core (`watcher.model`) and `sqlite.schema`; transactions are the caller's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence

from watcher.ledger.sqlite.schema import SELECT, row_to_drop
from watcher.model import Drop, DropFile, DropState, StateCount


class SQLiteRows:
    """Queries and row writes on a connection whose transaction the caller holds."""

    __slots__ = ("_conn", "location")

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self._conn = conn
        self.location = location

    def get(self, drop_id: str) -> Drop | None:
        """The row with this id (archived or not)."""
        row = self._conn.execute(f"{SELECT} WHERE id = ?", (drop_id,)).fetchone()
        return row_to_drop(row) if row else None

    def find_active(self, rule: str, drop: str) -> Drop | None:
        """The live (not archived) row for (rule, drop), if any."""
        row = self._conn.execute(
            f"{SELECT} WHERE rule = ? AND drop_path = ? AND archived = 0 "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (rule, drop),
        ).fetchone()
        return row_to_drop(row) if row else None

    def due(
        self,
        now: float,
        limit: int,
        *,
        skip_rules: Collection[str] = (),
        priority: Mapping[str, int] | None = None,
    ) -> list[Drop]:
        """Live `ready` rows whose next_attempt_at is NULL or <= now, except those of
        `skip_rules`; higher `priority` of their rule first (absent: 0), then longest-waiting."""
        skip, skip_args = _not_in(skip_rules)
        # Without distinct priorities the drops_due_order index serves the order (no sort).
        levels = set((priority or {}).values())
        order = ""
        order_args: tuple[str | int, ...] = ()
        if priority and levels != {0}:
            order = "CASE rule " + "WHEN ? THEN ? " * len(priority) + "ELSE 0 END DESC, "
            order_args = tuple(x for item in priority.items() for x in item)
        rows = self._conn.execute(
            f"{SELECT} WHERE state = ? AND archived = 0 "
            f"AND (next_attempt_at IS NULL OR next_attempt_at <= ?){skip} "
            f"ORDER BY {order}coalesce(next_attempt_at, created_at), created_at, rowid LIMIT ?",
            (DropState.READY.value, now, *skip_args, *order_args, limit),
        ).fetchall()
        return [row_to_drop(r) for r in rows]

    def next_due_at(self, *, skip_rules: Collection[str] = ()) -> float | None:
        """The earliest coalesce(next_attempt_at, created_at) among live `ready` rows, except
        those of `skip_rules`."""
        skip, skip_args = _not_in(skip_rules)
        row = self._conn.execute(
            # Only '?' placeholders are interpolated; the names are arguments.
            "SELECT min(coalesce(next_attempt_at, created_at)) FROM drops "  # noqa: S608
            f"WHERE state = ? AND archived = 0{skip}",
            (DropState.READY.value, *skip_args),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def in_state(self, states: Sequence[DropState], *, include_archived: bool) -> list[Drop]:
        """Rows in any of `states` (non-empty), oldest first."""
        marks = ", ".join("?" for _ in states)
        archived = "" if include_archived else " AND archived = 0"
        rows = self._conn.execute(
            f"{SELECT} WHERE state IN ({marks}){archived} ORDER BY created_at, rowid",
            tuple(DropState(s).value for s in states),
        ).fetchall()
        return [row_to_drop(r) for r in rows]

    def all_drops(self, *, include_archived: bool) -> list[Drop]:
        """Every row, oldest first."""
        where = "" if include_archived else " WHERE archived = 0"
        rows = self._conn.execute(f"{SELECT}{where} ORDER BY created_at, rowid").fetchall()
        return [row_to_drop(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows per state value, archived ones included (states without rows are absent)."""
        return dict(self._conn.execute("SELECT state, count(*) FROM drops GROUP BY state"))

    def state_counts(self, now: float) -> list[StateCount]:
        """Rows per (rule, state), archived included; live ready ones due by `now`; oldest live."""
        rows = self._conn.execute(
            "SELECT rule, state, count(*), "
            "sum(state = ? AND archived = 0 "
            "    AND (next_attempt_at IS NULL OR next_attempt_at <= ?)), "
            "min(CASE WHEN archived = 0 THEN created_at END) "
            "FROM drops GROUP BY rule, state",
            (DropState.READY.value, now),
        ).fetchall()
        return [
            StateCount(rule=r[0], state=r[1], drops=r[2], due=r[3] or 0, oldest_at=r[4])
            for r in rows
        ]

    def insert(
        self,
        *,
        drop_id: str,
        rule: str,
        drop: str,
        fingerprint: str,
        state: DropState,
        input_dir: str | None,
        deployment_id: str | None,
        now: float,
        local_path: str | None = None,
        marker_path: str | None = None,
    ) -> Drop:
        """Add a live row with attempts=0 and created_at=updated_at=now; return it."""
        self._conn.execute(
            "INSERT INTO drops (id, rule, drop_path, fingerprint, state, attempts, input_dir, "
            "deployment_id, created_at, updated_at, local_path, marker_path) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
            (
                drop_id,
                rule,
                drop,
                fingerprint,
                state.value,
                input_dir,
                deployment_id,
                now,
                now,
                local_path,
                marker_path,
            ),
        )
        inserted = self.get(drop_id)
        assert inserted is not None
        return inserted

    # --- the files of a drop (remote check, upload) -------------------------------------

    def results_pending(self) -> list[Drop]:
        """Live rows whose run's results are still to be saved, oldest first."""
        rows = self._conn.execute(
            f"{SELECT} WHERE results_state = 'pending' AND archived = 0 ORDER BY created_at, rowid"
        ).fetchall()
        return [row_to_drop(r) for r in rows]

    def files_of(self, drop_id: str) -> list[DropFile]:
        """The files recorded for a drop, by relative path."""
        rows = self._conn.execute(
            "SELECT rel, size, mtime_ns, uploaded FROM drop_files WHERE drop_id = ? ORDER BY rel",
            (drop_id,),
        ).fetchall()
        return [DropFile(rel=r[0], size=r[1], mtime_ns=r[2], uploaded=bool(r[3])) for r in rows]

    def replace_files(self, drop_id: str, files: Sequence[DropFile]) -> None:
        """Record exactly these files for the drop (none uploaded yet)."""
        self._conn.execute("DELETE FROM drop_files WHERE drop_id = ?", (drop_id,))
        self._conn.executemany(
            "INSERT INTO drop_files (drop_id, rel, size, mtime_ns) VALUES (?, ?, ?, ?)",
            [(drop_id, f.rel, f.size, f.mtime_ns) for f in files],
        )

    def set_uploaded(self, drop_id: str, rel: str, uploaded: bool) -> None:
        """Mark one file of the drop as uploaded (or not)."""
        self._conn.execute(
            "UPDATE drop_files SET uploaded = ? WHERE drop_id = ? AND rel = ?",
            (int(uploaded), drop_id, rel),
        )

    def clear_uploaded(self, drop_id: str) -> None:
        """Mark every file of the drop as not uploaded (a new batch)."""
        self._conn.execute("UPDATE drop_files SET uploaded = 0 WHERE drop_id = ?", (drop_id,))

    def update(self, drop_id: str, values: Mapping[str, object]) -> None:
        """Set these columns of one row."""
        # Column names come from watcher.ledger only, never from input.
        assignments = ", ".join(f"{column} = ?" for column in values)
        self._conn.execute(
            f"UPDATE drops SET {assignments} WHERE id = ?",  # noqa: S608
            (*values.values(), drop_id),
        )


def _not_in(rules: Collection[str]) -> tuple[str, tuple[str, ...]]:
    """The `AND rule NOT IN (...)` clause and its arguments (empty for no rules)."""
    if not rules:
        return "", ()
    names = tuple(sorted(rules))
    return f" AND rule NOT IN ({', '.join('?' for _ in names)})", names
