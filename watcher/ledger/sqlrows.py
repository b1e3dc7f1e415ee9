"""The SQL that reads and writes drop rows, shared by every backend (the `Rows` of a backend).

The statements are written once, with `?` placeholders; a `Dialect` runs them on its engine
(SQLite, PostgreSQL). Imports only the core (`watcher.model`) and `columns`; transactions are
the caller's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Protocol

from watcher.ledger.columns import COLUMNS, SELECT, row_to_drop
from watcher.model import Drop, DropFile, DropState, StateCount

_INSERT: Final = (
    "INSERT INTO drops (id, rule, drop_path, fingerprint, state, attempts, input_dir, "  # noqa: S608
    "deployment_id, created_at, updated_at, local_path, marker_path) "
    # Another host may have recorded the same drop a moment ago (the live row is unique per rule
    # and drop): then nothing is inserted, nothing returned, and that row is the drop's.
    "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
    f"RETURNING {COLUMNS}"
)


# Drops per `IN (...)` list: well under every engine's limit on parameters.
_IN_CHUNK: Final = 500


class Cursor(Protocol):
    """What the shared SQL reads from a statement's result."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    @property
    def rowcount(self) -> int: ...


class Dialect(Protocol):
    """How one engine runs the shared statements on its open connection."""

    @property
    def order_key(self) -> str:
        """The column that breaks ties in insertion order: rowid (SQLite), seq (PostgreSQL)."""
        ...

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        """Run one statement written with `?` placeholders."""
        ...

    def executemany(self, sql: str, params: Iterable[Sequence[object]]) -> None:
        """Run one statement once per parameter row."""
        ...


class SQLRows:
    """Queries and row writes on a connection whose transaction the caller holds.

    `lock` is appended to the select of one row by id: " FOR UPDATE" in a PostgreSQL write
    transaction, so two writers of one drop take turns (SQLite's BEGIN IMMEDIATE does that).
    """

    __slots__ = ("_conn", "_lock", "_order", "_skip", "location")

    def __init__(self, dialect: Dialect, location: str, *, lock: str = "") -> None:
        self._conn = dialect
        self._order = dialect.order_key
        self._lock = lock
        # Claims: rows another host's transaction holds are passed over, not waited for.
        self._skip = f"{lock} SKIP LOCKED" if lock else ""
        self.location = location

    def get(self, drop_id: str) -> Drop | None:
        """The row with this id (archived or not)."""
        row = self._conn.execute(f"{SELECT} WHERE id = ?{self._lock}", (drop_id,)).fetchone()
        return row_to_drop(row) if row else None

    def find_active(self, rule: str, drop: str) -> Drop | None:
        """The live (not archived) row for (rule, drop), if any."""
        row = self._conn.execute(
            f"{SELECT} WHERE rule = ? AND drop_path = ? AND archived = 0 "
            f"ORDER BY created_at DESC, {self._order} DESC LIMIT 1",
            (rule, drop),
        ).fetchone()
        return row_to_drop(row) if row else None

    def find_active_many(self, rule: str, drops: Sequence[str]) -> list[Drop]:
        """The live rows of these drops of `rule` (at most one each), in no order."""
        found: list[Drop] = []
        for start in range(0, len(drops), _IN_CHUNK):
            chunk = drops[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = self._conn.execute(
                f"{SELECT} WHERE rule = ? AND archived = 0 AND drop_path IN ({marks})",
                (rule, *chunk),
            ).fetchall()
            found.extend(row_to_drop(r) for r in rows)
        return found

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
        order, order_args = _by_priority(priority)
        rows = self._conn.execute(
            f"{SELECT} WHERE state = ? AND archived = 0 "
            f"AND (next_attempt_at IS NULL OR next_attempt_at <= ?){skip} "
            f"ORDER BY {order}coalesce(next_attempt_at, created_at), created_at, {self._order} "
            "LIMIT ?",
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

    def next_due_for(
        self, host: str, now: float, *, skip_rules: Collection[str] = ()
    ) -> float | None:
        """`next_due_at` among the rows `host` may claim at `now` (unclaimed, its own, or with
        an ended lease): a shared ledger's submit loop sleeps on those only."""
        skip, skip_args = _not_in(skip_rules)
        row = self._conn.execute(
            "SELECT min(coalesce(next_attempt_at, created_at)) FROM drops "  # noqa: S608
            f"WHERE state = ? AND archived = 0{skip} "
            "AND (claimed_by IS NULL OR claimed_by = ? OR lease_until < ?)",
            (DropState.READY.value, *skip_args, host, now),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def in_state(self, states: Sequence[DropState], *, include_archived: bool) -> list[Drop]:
        """Rows in any of `states` (non-empty), oldest first."""
        marks = ", ".join("?" for _ in states)
        archived = "" if include_archived else " AND archived = 0"
        rows = self._conn.execute(
            f"{SELECT} WHERE state IN ({marks}){archived} ORDER BY created_at, {self._order}",
            tuple(DropState(s).value for s in states),
        ).fetchall()
        return [row_to_drop(r) for r in rows]

    def all_drops(self, *, include_archived: bool) -> list[Drop]:
        """Every row, oldest first."""
        where = "" if include_archived else " WHERE archived = 0"
        rows = self._conn.execute(f"{SELECT}{where} ORDER BY created_at, {self._order}").fetchall()
        return [row_to_drop(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows per state value, archived ones included (states without rows are absent)."""
        return dict(self._conn.execute("SELECT state, count(*) FROM drops GROUP BY state"))

    def state_counts(self, now: float) -> list[StateCount]:
        """Rows per (rule, state), archived included; live ready ones due by `now`; oldest live."""
        rows = self._conn.execute(
            "SELECT rule, state, count(*), "
            "sum(CASE WHEN state = ? AND archived = 0 "
            "    AND (next_attempt_at IS NULL OR next_attempt_at <= ?) THEN 1 ELSE 0 END), "
            "min(CASE WHEN archived = 0 THEN created_at END) "
            "FROM drops GROUP BY rule, state",
            (DropState.READY.value, now),
        ).fetchall()
        return [
            StateCount(rule=r[0], state=r[1], drops=r[2], due=int(r[3] or 0), oldest_at=r[4])
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
        """Add a live row with attempts=0 and created_at=updated_at=now; return it (or the live
        row of (rule, drop) that another host inserted first)."""
        inserted = self._conn.execute(
            _INSERT,
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
        ).fetchall()
        if inserted:
            return row_to_drop(inserted[0])
        theirs = self.find_active(rule, drop)
        assert theirs is not None
        return theirs

    # --- the files of a drop (remote check, upload) -------------------------------------

    def results_pending(self) -> list[Drop]:
        """Live rows whose run's results are still to be saved, oldest first."""
        rows = self._conn.execute(
            f"{SELECT} WHERE results_state = 'pending' AND archived = 0 "
            f"ORDER BY created_at, {self._order}"
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

    def update_live(
        self,
        drop_id: str,
        values: Mapping[str, object],
        states: Collection[DropState],
        *,
        add: Mapping[str, int] | None = None,
    ) -> Drop | None:
        """Set these columns (and add `add` to those counters) of the row if it is live and in
        one of `states`; return the new row, or None when it is not (nothing written). One
        statement: no read before or after."""
        # Column names come from watcher.ledger only, never from input.
        assignments = [f"{column} = ?" for column in values]
        assignments += [f"{column} = {column} + ?" for column in add or ()]
        marks = ", ".join("?" for _ in states)
        rows = self._conn.execute(
            f"UPDATE drops SET {', '.join(assignments)} "  # noqa: S608
            f"WHERE id = ? AND archived = 0 AND state IN ({marks}) RETURNING {COLUMNS}",
            (*values.values(), *(add or {}).values(), drop_id, *(s.value for s in states)),
        ).fetchall()
        return row_to_drop(rows[0]) if rows else None

    # --- claims (a ledger shared by several hosts) --------------------------------------

    def claimable(
        self,
        states: Sequence[DropState],
        *,
        host: str,
        now: float,
        limit: int | None,
        due_at: float | None,
        skip_rules: Collection[str] = (),
        priority: Mapping[str, int] | None = None,
    ) -> list[Drop]:
        """Live rows in `states` that are unclaimed, claimed by `host`, or whose lease ended
        by `now`; with `due_at`, only those due then, not of `skip_rules`, in the `due` order.
        Rows locked by another transaction are skipped (PostgreSQL: FOR UPDATE SKIP LOCKED)."""
        marks = ", ".join("?" for _ in states)
        params: list[object] = [DropState(s).value for s in states]
        when = ""
        if due_at is not None:
            skip, skip_args = _not_in(skip_rules)
            when = f" AND (next_attempt_at IS NULL OR next_attempt_at <= ?){skip}"
            params += [due_at, *skip_args]
            by, by_args = _by_priority(priority)
            order = f"{by}coalesce(next_attempt_at, created_at), created_at, {self._order}"
        else:
            by_args = ()
            order = f"created_at, {self._order}"
        params += [host, now, *by_args]
        cap = ""
        if limit is not None:
            cap = " LIMIT ?"
            params.append(limit)
        rows = self._conn.execute(
            f"{SELECT} WHERE archived = 0 AND state IN ({marks}){when} "
            "AND (claimed_by IS NULL OR claimed_by = ? OR lease_until < ?) "
            f"ORDER BY {order}{cap}{self._skip}",
            params,
        ).fetchall()
        return [row_to_drop(r) for r in rows]

    def beat(self, host: str, now: float, lease_until: float) -> int:
        """`host` is alive at `now`: its heartbeat row, and its unexpired leases extended to
        `lease_until` (an expired one stays expired: another host may be taking it over).
        Returns how many leases were extended."""
        self._conn.execute(
            "INSERT INTO hosts (host_id, heartbeat_at, started_at) VALUES (?, ?, ?) "
            "ON CONFLICT (host_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (host, now, now),
        )
        cur = self._conn.execute(
            "UPDATE drops SET lease_until = ? WHERE claimed_by = ? AND lease_until >= ?",
            (lease_until, host, now),
        )
        return max(0, cur.rowcount)

    def hosts(self) -> list[tuple[str, float, float]]:
        """(host_id, heartbeat_at, started_at) of every host that ever beat, by id."""
        rows = self._conn.execute(
            "SELECT host_id, heartbeat_at, started_at FROM hosts ORDER BY host_id"
        ).fetchall()
        return [(str(r[0]), float(r[1]), float(r[2])) for r in rows]


def _not_in(rules: Collection[str]) -> tuple[str, tuple[str, ...]]:
    """The `AND rule NOT IN (...)` clause and its arguments (empty for no rules)."""
    if not rules:
        return "", ()
    names = tuple(sorted(rules))
    return f" AND rule NOT IN ({', '.join('?' for _ in names)})", names


def _by_priority(priority: Mapping[str, int] | None) -> tuple[str, tuple[str | int, ...]]:
    """The ORDER BY prefix for rule priorities, higher first, and its arguments; empty without
    distinct priorities (then the drops_due_order index serves the order, no sort)."""
    if not priority or set(priority.values()) == {0}:
        return "", ()
    order = "CASE rule " + "WHEN ? THEN ? " * len(priority) + "ELSE 0 END DESC, "
    return order, tuple(x for item in priority.items() for x in item)
