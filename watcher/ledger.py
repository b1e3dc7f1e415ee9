"""The durable ledger: one SQLite row per drop, its state transitions and schema migrations.

The only sqlite3 user. Imports nothing from `watcher` except `errors`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from watcher.errors import LedgerError
from watcher.model import RUN_STATUS_STATES, TERMINAL, Drop, DropState, SubmittedRun

LEDGER_FILENAME: Final = "ledger.sqlite3"
BUSY_TIMEOUT_MS: Final = 5000


# Allowed source states per transition. Anything else is a bug in the caller (RuntimeError).
_FROM_BEGIN: Final = frozenset({DropState.READY})
_FROM_SUBMITTING: Final = frozenset({DropState.SUBMITTING})
# A drop can be rejected/failed before any POST (e.g. its rule vanished on reload).
_FROM_GIVE_UP: Final = frozenset({DropState.READY, DropState.SUBMITTING})
# needs_review is terminal for us, but a human may resume the run at its checkpoint.
_FROM_TRACK: Final = frozenset({DropState.SUBMITTED, DropState.NEEDS_REVIEW})
_FROM_FINGERPRINT: Final = frozenset({DropState.DETECTED, DropState.READY})
_FROM_REARM: Final = frozenset({DropState.FAILED, DropState.REJECTED})
# Never archive a drop with a request or a run in flight: the run still reads its files.
_FROM_ARCHIVE: Final = frozenset({DropState.DETECTED, DropState.READY}) | TERMINAL


# --- schema ------------------------------------------------------------------------------
# Each migration runs in one transaction together with the row that records it, so a crash
# mid-migration leaves the previous version intact. Append only; never edit a released step.

_V1: Final = (
    """CREATE TABLE drops (
        id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        drop_path TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        attempt_id TEXT,
        intent_at REAL,
        run_id TEXT,
        run_status TEXT,
        last_error TEXT,
        last_response TEXT,
        input_dir TEXT,
        deployment_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        submitted_at REAL,
        finished_at REAL,
        post_action_done INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX drops_rule_drop ON drops (rule, drop_path)",
    "CREATE INDEX drops_due ON drops (state, next_attempt_at)",
)

_V2: Final = (
    # `archived` lets a same-named new drop start a fresh row; at most one live row per drop.
    "ALTER TABLE drops ADD COLUMN archived INTEGER NOT NULL DEFAULT 0",
    """UPDATE drops SET archived = 1 WHERE rowid NOT IN
        (SELECT max(rowid) FROM drops GROUP BY rule, drop_path)""",
    "DROP INDEX drops_rule_drop",
    "CREATE UNIQUE INDEX drops_active ON drops (rule, drop_path) WHERE archived = 0",
    "CREATE INDEX drops_run_id ON drops (run_id)",
)

_V3: Final = (
    # due() orders by this expression: without an index it sorts every ready row per call
    # (3.7 ms at 10,000 ready rows, once per freed submission slot).
    """CREATE INDEX drops_due_order ON drops
        (state, archived, coalesce(next_attempt_at, created_at), created_at)""",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_COLUMNS: Final = (
    "id, rule, drop_path, fingerprint, state, attempts, next_attempt_at, attempt_id, intent_at, "
    "run_id, run_status, last_error, last_response, input_dir, deployment_id, created_at, "
    "updated_at, submitted_at, finished_at, post_action_done, archived"
)
_SELECT: Final = f"SELECT {_COLUMNS} FROM drops"  # noqa: S608 -- constant column list


def new_drop_id() -> str:
    """A short random id ("d-" + 12 hex chars), small enough for a run tag."""
    return "d-" + uuid.uuid4().hex[:12]


def ledger_path(state_dir: Path) -> Path:
    """Where the ledger of `state_dir` lives."""
    return state_dir / LEDGER_FILENAME


def _row_to_drop(row: Sequence[Any]) -> Drop:
    return Drop(
        id=row[0],
        rule=row[1],
        drop=row[2],
        fingerprint=row[3],
        state=DropState(row[4]),
        attempts=row[5],
        next_attempt_at=row[6],
        attempt_id=row[7],
        intent_at=row[8],
        run_id=row[9],
        run_status=row[10],
        last_error=row[11],
        last_response=row[12],
        input_dir=row[13],
        deployment_id=row[14],
        created_at=row[15],
        updated_at=row[16],
        submitted_at=row[17],
        finished_at=row[18],
        post_action_done=bool(row[19]),
        archived=bool(row[20]),
    )


class Ledger:
    """The drop ledger in one SQLite file (WAL, synchronous=FULL).

    Every write method is one `BEGIN IMMEDIATE ... COMMIT` and is durable when it returns.
    `batch()` groups several writes into one transaction. Impossible transitions raise
    RuntimeError (a bug); an unusable database raises LedgerError.
    """

    def __init__(self, path: Path) -> None:
        """Open or create the ledger at `path` and migrate it to `SCHEMA_VERSION`.

        Raises:
            LedgerError: the file is not an SQLite database, is not a ledger, or was written by
                a newer aihub-watcher.
        """
        self.path = Path(path)
        self.readonly = False
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = self._connect(str(self.path), uri=False)
        try:
            self._setup_writable()
        except BaseException:
            self.close()
            raise

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Ledger:
        """Open (creating the directory and file if needed) `state_dir/ledger.sqlite3`.

        Raises:
            LedgerError: as for `Ledger(path)`, or the directory cannot be created.
        """
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create state_dir {state_dir}: {exc}") from exc
        return cls(ledger_path(state_dir))

    @classmethod
    def open_readonly(cls, path: Path) -> Ledger:
        """Open an existing ledger read-only (for `status`): never creates it, never writes.

        Raises:
            LedgerError: there is no ledger at `path`, it is unreadable, or its schema is not
                the one this version knows (run the daemon once to migrate it).
        """
        path = Path(path)
        if not path.is_file():
            raise LedgerError(f"no ledger at {path}: has the daemon run with this state_dir?")
        ledger = cls.__new__(cls)
        ledger.path = path
        ledger.readonly = True
        ledger._lock = threading.RLock()
        ledger._depth = 0
        uri = "file:" + quote(str(path.resolve())) + "?mode=ro"
        ledger._conn = ledger._connect(uri, uri=True)
        try:
            try:
                version = ledger._read_version(ledger._conn)
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read ledger {path}: {exc}") from exc
            if version is None:
                raise LedgerError(f"{path} is not an aihub-watcher ledger (no schema_version)")
            ledger._check_not_newer(version)
            if version < SCHEMA_VERSION:
                raise LedgerError(
                    f"ledger {path} has schema version {version}, this aihub-watcher uses "
                    f"{SCHEMA_VERSION}: start the daemon once to migrate it"
                )
        except BaseException:
            ledger.close()
            raise
        return ledger

    # --- lifecycle ------------------------------------------------------------------------

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False is
            # safe because every use holds self._lock (it may be opened via asyncio.to_thread).
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            conn.close()
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc
        return conn

    def _setup_writable(self) -> None:
        conn = self._connection()
        try:
            # The first real read: a non-SQLite file fails here with "file is not a database".
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"ledger {self.path}: cannot switch to WAL (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            # Keep the WAL file from staying huge after a burst.
            conn.execute("PRAGMA journal_size_limit = 67108864")
            self._migrate(conn)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc

    @staticmethod
    def _read_version(conn: sqlite3.Connection) -> int | None:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not has_table:
            return None
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _check_not_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.path} has schema version {version}, newer than this "
                f"aihub-watcher understands ({SCHEMA_VERSION}): upgrade aihub-watcher or use "
                "another state_dir"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE serialises a daemon and a CLI opening the same old file at once.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._read_version(conn)
            if version is None:
                others = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                ).fetchall()
                if others:
                    raise LedgerError(
                        f"{self.path} is an SQLite database but not an aihub-watcher ledger"
                    )
                conn.execute(
                    "CREATE TABLE schema_version "
                    "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
                )
                version = 0
            self._check_not_newer(version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for number, statements in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = self._read_version(conn) or 0
                if current >= number:  # another process migrated meanwhile
                    conn.execute("COMMIT")
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (number, time.time()),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "ro" if self.readonly else "rw"
        return f"Ledger({str(self.path)!r}, {mode})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"ledger {self.path} is closed")
        return self._conn

    def schema_version(self) -> int:
        """The schema version of the open file (== SCHEMA_VERSION once opened)."""
        with self._read() as conn:
            return self._read_version(conn) or 0

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise RuntimeError(f"ledger {self.path} was opened read-only")
        with self._lock:
            conn = self._connection()
            outermost = self._depth == 0
            try:
                if outermost:
                    conn.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield conn
                finally:
                    self._depth -= 1
                if outermost:
                    conn.execute("COMMIT")
            except BaseException as exc:
                if outermost and conn.in_transaction:
                    # The original error is the one worth reporting.
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise LedgerError(f"ledger {self.path}: {exc}") from exc
                raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the write calls inside into ONE transaction (one fsync), all or nothing.

        Nested batches join the outer one. On any exception everything in the batch is rolled
        back. The Drops returned inside reflect uncommitted state until the block exits.
        """
        with self._write():
            yield

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _fetch(conn: sqlite3.Connection, drop_id: str) -> Drop | None:
        row = conn.execute(f"{_SELECT} WHERE id = ?", (drop_id,)).fetchone()
        return _row_to_drop(row) if row else None

    def _require(self, conn: sqlite3.Connection, drop_id: str, op: str) -> Drop:
        drop = self._fetch(conn, drop_id)
        if drop is None:
            raise RuntimeError(f"ledger.{op}: no drop {drop_id!r}")
        return drop

    @staticmethod
    def _update(conn: sqlite3.Connection, drop_id: str, values: Mapping[str, object]) -> None:
        # Column names come from this module only, never from input.
        assignments = ", ".join(f"{column} = ?" for column in values)
        conn.execute(
            f"UPDATE drops SET {assignments} WHERE id = ?",  # noqa: S608
            (*values.values(), drop_id),
        )

    def _transition(
        self,
        drop_id: str,
        *,
        op: str,
        allowed: frozenset[DropState],
        values: Callable[[Drop], Mapping[str, object]],
    ) -> Drop:
        with self._write() as conn:
            drop = self._require(conn, drop_id, op)
            if drop.archived or drop.state not in allowed:
                where = "archived" if drop.archived else drop.state.value
                raise RuntimeError(
                    f"ledger.{op}: drop {drop_id} is {where}; allowed from "
                    f"{sorted(s.value for s in allowed)} (not archived)"
                )
            self._update(conn, drop_id, values(drop))
            result = self._fetch(conn, drop_id)
            assert result is not None
            return result

    def _insert(
        self,
        conn: sqlite3.Connection,
        *,
        rule: str,
        drop: str,
        fingerprint: str,
        state: DropState,
        input_dir: str | None,
        deployment_id: str | None,
        now: float,
    ) -> Drop:
        drop_id = new_drop_id()
        conn.execute(
            "INSERT INTO drops (id, rule, drop_path, fingerprint, state, attempts, input_dir, "
            "deployment_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
            (drop_id, rule, drop, fingerprint, state.value, input_dir, deployment_id, now, now),
        )
        result = self._fetch(conn, drop_id)
        assert result is not None
        return result

    @staticmethod
    def _find_active(conn: sqlite3.Connection, rule: str, drop: str) -> Drop | None:
        row = conn.execute(
            f"{_SELECT} WHERE rule = ? AND drop_path = ? AND archived = 0 "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (rule, drop),
        ).fetchone()
        return _row_to_drop(row) if row else None

    # --- intake ---------------------------------------------------------------------------

    def find_active(self, rule: str, drop: str) -> Drop | None:
        """The live (not archived) row for (rule, drop), if any. There is at most one."""
        with self._read() as conn:
            return self._find_active(conn, rule, drop)

    def _refuse_active(self, conn: sqlite3.Connection, rule: str, drop: str, op: str) -> None:
        active = self._find_active(conn, rule, drop)
        if active is not None:
            raise RuntimeError(
                f"ledger.{op}: {rule}:{drop} already has live row {active.id} "
                f"({active.state.value}); archive() or resubmit() it first"
            )

    def record_ready(
        self,
        *,
        rule: str,
        drop: str,
        fingerprint: str,
        input_dir: str,
        deployment_id: str,
        now: float | None = None,
    ) -> Drop:
        """Insert a new row in state `ready` (or move the live `detected` row to `ready`).

        Raises RuntimeError when (rule, drop) already has a live row in any other state: the
        caller decides first (skip, `update_fingerprint`, `resubmit` or `archive`).
        """
        now = time.time() if now is None else now
        with self._write() as conn:
            active = self._find_active(conn, rule, drop)
            if active is not None and active.state is DropState.DETECTED:
                values = {
                    "state": DropState.READY.value,
                    "fingerprint": fingerprint,
                    "input_dir": input_dir,
                    "deployment_id": deployment_id,
                    "updated_at": now,
                }
                self._update(conn, active.id, values)
                result = self._fetch(conn, active.id)
                assert result is not None
                return result
            self._refuse_active(conn, rule, drop, "record_ready")
            return self._insert(
                conn,
                rule=rule,
                drop=drop,
                fingerprint=fingerprint,
                state=DropState.READY,
                input_dir=input_dir,
                deployment_id=deployment_id,
                now=now,
            )

    def update_fingerprint(
        self, drop_id: str, fingerprint: str, *, now: float | None = None
    ) -> Drop:
        """The content of a drop not yet submitted (detected/ready) changed: keep its row."""
        now = time.time() if now is None else now
        return self._transition(
            drop_id,
            op="update_fingerprint",
            allowed=_FROM_FINGERPRINT,
            values=lambda _d: {"fingerprint": fingerprint, "updated_at": now},
        )

    def resubmit(
        self,
        drop_id: str,
        fingerprint: str,
        *,
        input_dir: str | None = None,
        deployment_id: str | None = None,
        now: float | None = None,
    ) -> Drop:
        """on_change=resubmit: archive the terminal row and return a new `ready` row for the
        same (rule, drop), in one transaction. input_dir/deployment_id default to the old
        row's. A drop still submitting/submitted cannot be resubmitted (RuntimeError)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            old = self._transition(
                drop_id,
                op="resubmit",
                allowed=TERMINAL,
                values=lambda _d: {"archived": 1, "updated_at": now},
            )
            return self._insert(
                conn,
                rule=old.rule,
                drop=old.drop,
                fingerprint=fingerprint,
                state=DropState.READY,
                input_dir=old.input_dir if input_dir is None else input_dir,
                deployment_id=old.deployment_id if deployment_id is None else deployment_id,
                now=now,
            )

    def archive(self, drop_id: str, *, now: float | None = None) -> None:
        """Retire a row (folder gone after terminal, or gone before submission) so that a
        same-named new drop gets a fresh row. Idempotent. RuntimeError while in flight."""
        now = time.time() if now is None else now
        with self._write() as conn:
            drop = self._require(conn, drop_id, "archive")
            if drop.archived:
                return
            if drop.state not in _FROM_ARCHIVE:
                raise RuntimeError(
                    f"ledger.archive: drop {drop_id} is {drop.state.value}; a drop with a "
                    "request or run in flight cannot be archived"
                )
            self._update(conn, drop_id, {"archived": 1, "updated_at": now})

    # --- submission -----------------------------------------------------------------------

    def due(self, now: float, limit: int = 1000) -> list[Drop]:
        """Live `ready` rows whose next_attempt_at is NULL or <= now, longest-waiting first."""
        with self._read() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE state = ? AND archived = 0 "
                "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
                "ORDER BY coalesce(next_attempt_at, created_at), created_at, rowid LIMIT ?",
                (DropState.READY.value, now, limit),
            ).fetchall()
        return [_row_to_drop(r) for r in rows]

    def next_due_at(self) -> float | None:
        """The earliest next_attempt_at among live `ready` rows (NULL counts as created_at);
        None when nothing is ready. Lets the submit loop sleep until then."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT min(coalesce(next_attempt_at, created_at)) FROM drops "
                "WHERE state = ? AND archived = 0",
                (DropState.READY.value,),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def begin_submit(
        self,
        drop_id: str,
        *,
        now: float,
        input_dir: str | None = None,
        deployment_id: str | None = None,
    ) -> Drop:
        """Record the intent to POST: ready -> submitting, new attempt_id, intent_at=now,
        attempts+1. Durable before the request is sent. input_dir/deployment_id, when given,
        replace the stored ones (the rule may have changed on reload)."""

        def values(d: Drop) -> Mapping[str, object]:
            return {
                "state": DropState.SUBMITTING.value,
                "attempt_id": uuid.uuid4().hex,
                "intent_at": now,
                "attempts": d.attempts + 1,
                "next_attempt_at": None,
                "input_dir": d.input_dir if input_dir is None else input_dir,
                "deployment_id": d.deployment_id if deployment_id is None else deployment_id,
                "updated_at": now,
            }

        return self._transition(drop_id, op="begin_submit", allowed=_FROM_BEGIN, values=values)

    def begin_submit_many(self, drop_ids: Iterable[str], *, now: float) -> list[Drop]:
        """`begin_submit` for each id in ONE transaction (all or nothing)."""
        with self.batch():
            return [self.begin_submit(drop_id, now=now) for drop_id in drop_ids]

    def mark_submitted(
        self, drop_id: str, *, run_id: str, run_status: str, response: str, now: float
    ) -> Drop:
        """The run exists (POST answered, or reconcile adopted it): submitting -> submitted.
        The tracker maps a terminal run_status with `set_run_status`."""
        return self._transition(
            drop_id,
            op="mark_submitted",
            allowed=_FROM_SUBMITTING,
            values=lambda _d: {
                "state": DropState.SUBMITTED.value,
                "run_id": run_id,
                "run_status": run_status,
                "last_response": response,
                "submitted_at": now,
                "updated_at": now,
            },
        )

    def mark_submitted_many(self, results: Iterable[SubmittedRun], *, now: float) -> list[Drop]:
        """`mark_submitted` for each result in ONE transaction (all or nothing)."""
        with self.batch():
            return [
                self.mark_submitted(
                    r.drop_id,
                    run_id=r.run_id,
                    run_status=r.run_status,
                    response=r.response,
                    now=now,
                )
                for r in results
            ]

    def schedule_retry(
        self, drop_id: str, *, next_attempt_at: float, error: str, now: float
    ) -> Drop:
        """The attempt failed retryably: submitting -> ready, due at next_attempt_at."""
        return self._transition(
            drop_id,
            op="schedule_retry",
            allowed=_FROM_SUBMITTING,
            values=lambda _d: {
                "state": DropState.READY.value,
                "next_attempt_at": next_attempt_at,
                "last_error": error,
                "updated_at": now,
            },
        )

    def mark_rejected(self, drop_id: str, *, error: str, response: str | None, now: float) -> Drop:
        """Permanent 4xx: (submitting|ready) -> rejected. Keeps the previous response when
        `response` is None."""

        def values(d: Drop) -> Mapping[str, object]:
            return {
                "state": DropState.REJECTED.value,
                "last_error": error,
                "last_response": d.last_response if response is None else response,
                "finished_at": now,
                "next_attempt_at": None,
                "updated_at": now,
            }

        return self._transition(drop_id, op="mark_rejected", allowed=_FROM_GIVE_UP, values=values)

    def mark_failed(self, drop_id: str, *, error: str, now: float) -> Drop:
        """Retries exhausted (or given up): (submitting|ready) -> failed."""
        return self._transition(
            drop_id,
            op="mark_failed",
            allowed=_FROM_GIVE_UP,
            values=lambda _d: {
                "state": DropState.FAILED.value,
                "last_error": error,
                "finished_at": now,
                "next_attempt_at": None,
                "updated_at": now,
            },
        )

    def release(self, drop_id: str, *, now: float) -> Drop:
        """The POST was never sent (hub paused, shutting down): submitting -> ready, due now,
        and the attempt is not counted (attempts-1, attempt_id/intent_at cleared)."""
        return self._transition(
            drop_id,
            op="release",
            allowed=_FROM_SUBMITTING,
            values=lambda d: {
                "state": DropState.READY.value,
                "attempts": max(0, d.attempts - 1),
                "attempt_id": None,
                "intent_at": None,
                "next_attempt_at": None,
                "updated_at": now,
            },
        )

    def in_state(self, *states: DropState, include_archived: bool = False) -> list[Drop]:
        """Rows in any of `states` (live ones unless include_archived), oldest first."""
        if not states:
            return []
        marks = ", ".join("?" for _ in states)
        archived = "" if include_archived else " AND archived = 0"
        with self._read() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE state IN ({marks}){archived} ORDER BY created_at, rowid",
                tuple(DropState(s).value for s in states),
            ).fetchall()
        return [_row_to_drop(r) for r in rows]

    # --- tracking -------------------------------------------------------------------------

    def set_run_status(self, drop_id: str, *, run_status: str, response: str, now: float) -> Drop:
        """Record a polled run status: COMPLETE->complete, FAILED->run_failed,
        CANCELLED->cancelled, STOPPED_AT_CHECKPOINT->needs_review, else stays submitted."""
        state = RUN_STATUS_STATES.get(run_status, DropState.SUBMITTED)
        return self._transition(
            drop_id,
            op="set_run_status",
            allowed=_FROM_TRACK,
            values=lambda _d: {
                "state": state.value,
                "run_status": run_status,
                "last_response": response,
                "finished_at": now if state in TERMINAL else None,
                "updated_at": now,
            },
        )

    def mark_post_action_done(self, drop_id: str, *, now: float | None = None) -> None:
        """The post-run action (keep/delete/move) ran; only after a terminal state."""
        now = time.time() if now is None else now
        with self._write() as conn:
            drop = self._require(conn, drop_id, "mark_post_action_done")
            if drop.state not in TERMINAL:
                raise RuntimeError(
                    f"ledger.mark_post_action_done: drop {drop_id} is {drop.state.value}, "
                    "not terminal"
                )
            self._update(conn, drop_id, {"post_action_done": 1, "updated_at": now})

    # --- operator -------------------------------------------------------------------------

    def rearm(self, drop_id: str, *, now: float) -> Drop:
        """`aihub-watcher retry`: failed/rejected -> ready, attempts=0, due now.

        Raises:
            LedgerError: no such drop, it is archived, or it is not failed/rejected.
        """
        with self._write() as conn:
            drop = self._fetch(conn, drop_id)
            if drop is None:
                raise LedgerError(f"no drop {drop_id!r} in ledger {self.path}")
            if drop.archived:
                raise LedgerError(
                    f"drop {drop_id} is archived (its folder is gone or it was resubmitted)"
                )
            if drop.state not in _FROM_REARM:
                raise LedgerError(
                    f"drop {drop_id} is {drop.state.value}; only failed or rejected drops "
                    "can be retried"
                )
            self._update(
                conn,
                drop_id,
                {
                    "state": DropState.READY.value,
                    "attempts": 0,
                    "next_attempt_at": None,
                    "attempt_id": None,
                    "intent_at": None,
                    "finished_at": None,
                    "updated_at": now,
                },
            )
            result = self._fetch(conn, drop_id)
            assert result is not None
            return result

    def active_drops(self) -> list[Drop]:
        """Every live (not archived) row, oldest first."""
        return self.all_drops(include_archived=False)

    def get(self, drop_id: str) -> Drop | None:
        """The row with this id (archived or not)."""
        with self._read() as conn:
            return self._fetch(conn, drop_id)

    def all_drops(self, *, include_archived: bool = True) -> list[Drop]:
        """Every row, oldest first."""
        where = "" if include_archived else " WHERE archived = 0"
        with self._read() as conn:
            rows = conn.execute(f"{_SELECT}{where} ORDER BY created_at, rowid").fetchall()
        return [_row_to_drop(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Drops per state, archived ones included (a drop moved away after its run is still
        complete); every DropState value is a key (0 when none)."""
        result = {state.value: 0 for state in DropState}
        with self._read() as conn:
            for state, count in conn.execute("SELECT state, count(*) FROM drops GROUP BY state"):
                result[state] = count
        return result
