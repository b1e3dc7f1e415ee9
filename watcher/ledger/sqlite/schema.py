"""The SQLite ledger's schema: the migrations, the column list and the row -> Drop mapping.

Imports only the core (`watcher.errors`, `watcher.model`) and sqlite3.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from watcher.errors import LedgerError
from watcher.model import Drop, DropState

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

_V4: Final = (
    # Where the drop was when it was detected, so a reload that moves `watch` can never make a
    # post-run action touch another folder of the same name. NULL on older rows: derived.
    "ALTER TABLE drops ADD COLUMN local_path TEXT",
    "ALTER TABLE drops ADD COLUMN marker_path TEXT",
)

_V5: Final = (
    # Issue 11: remote check, upload batches, results. The files of a drop as detected are kept
    # for the stages that work file by file (the remote check and the upload), and each upload
    # is recorded, so a restart completes the same batch.
    "ALTER TABLE drops ADD COLUMN batch_id INTEGER",
    "ALTER TABLE drops ADD COLUMN results_state TEXT",
    "ALTER TABLE drops ADD COLUMN results_path TEXT",
    "ALTER TABLE drops ADD COLUMN results_attempts INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE drops ADD COLUMN results_error TEXT",
    "CREATE INDEX drops_results ON drops (results_state) WHERE results_state IS NOT NULL",
    """CREATE TABLE drop_files (
        drop_id TEXT NOT NULL,
        rel TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        uploaded INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (drop_id, rel)
    ) WITHOUT ROWID""",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# The order of COLUMNS is the order row_to_drop reads.
COLUMNS: Final = (
    "id, rule, drop_path, fingerprint, state, attempts, next_attempt_at, attempt_id, intent_at, "
    "run_id, run_status, last_error, last_response, input_dir, deployment_id, created_at, "
    "updated_at, submitted_at, finished_at, post_action_done, archived, local_path, marker_path, "
    "batch_id, results_state, results_path, results_attempts, results_error"
)
SELECT: Final = f"SELECT {COLUMNS} FROM drops"  # noqa: S608 -- constant column list


def row_to_drop(row: Sequence[Any]) -> Drop:
    """A `drops` row selected with `SELECT` as a Drop."""
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
        local_path=row[21],
        marker_path=row[22],
        batch_id=row[23],
        results_state=row[24],
        results_path=row[25],
        results_attempts=row[26],
        results_error=row[27],
    )


def read_version(conn: sqlite3.Connection) -> int | None:
    """The file's schema version; None when it has no schema_version table (not a ledger)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has_table:
        return None
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def check_not_newer(path: Path, version: int) -> None:
    """Refuse a file written by a newer aihub-watcher.

    Raises:
        LedgerError: `version` is above SCHEMA_VERSION.
    """
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger {path} has schema version {version}, newer than this "
            f"aihub-watcher understands ({SCHEMA_VERSION}): upgrade aihub-watcher or use "
            "another state_dir"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file at `path` to SCHEMA_VERSION, one transaction per step.

    Raises:
        LedgerError: the file holds other tables but no schema_version, or is newer.
    """
    version = _claim(conn, path)
    for number, statements in enumerate(MIGRATIONS, start=1):
        if number <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = read_version(conn) or 0
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


def _claim(conn: sqlite3.Connection, path: Path) -> int:
    """The file's version, after creating schema_version in an empty file."""
    # BEGIN IMMEDIATE serialises a daemon and a CLI opening the same old file at once.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = read_version(conn)
        if version is None:
            others = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            if others:
                raise LedgerError(f"{path} is an SQLite database but not an aihub-watcher ledger")
            conn.execute(
                "CREATE TABLE schema_version "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            version = 0
        check_not_newer(path, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version
