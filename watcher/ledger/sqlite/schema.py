"""The SQLite ledger's schema: the migrations, the column list and the row -> Drop mapping.

Imports only the core (`watcher.errors`, `watcher.model`) and sqlite3.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

from watcher.errors import LedgerError

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

_V6: Final = (
    # Issue 14: claims on a shared ledger (unused on a single host, kept so both backends have
    # one schema): who holds a drop's work, until when, the fencing epoch; each host's heartbeat.
    "ALTER TABLE drops ADD COLUMN claimed_by TEXT",
    "ALTER TABLE drops ADD COLUMN lease_until REAL",
    "ALTER TABLE drops ADD COLUMN claim_epoch INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE drops ADD COLUMN submitted_by TEXT",
    """CREATE TABLE hosts (
        host_id TEXT PRIMARY KEY,
        heartbeat_at REAL NOT NULL,
        started_at REAL NOT NULL
    )""",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION: Final = len(MIGRATIONS)


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
