"""The PostgreSQL ledger's schema: the migrations, applied one transaction each.

The first step creates the schema SQLite reaches at its version 5, so both backends share one
SCHEMA_VERSION: a later change to the ledger adds a step to each. Time columns are DOUBLE
PRECISION (seconds since the epoch, as in SQLite); 0/1 flags stay integers so the shared SQL
(`watcher.ledger.sqlrows`) runs unchanged. Imports nothing from watcher;
a test checks that the last step is SCHEMA_VERSION.
"""

from __future__ import annotations

from typing import Final

_V5: Final = (
    """CREATE TABLE drops (
        seq BIGSERIAL NOT NULL,
        id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        drop_path TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION,
        attempt_id TEXT,
        intent_at DOUBLE PRECISION,
        run_id TEXT,
        run_status TEXT,
        last_error TEXT,
        last_response TEXT,
        input_dir TEXT,
        deployment_id TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        submitted_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        post_action_done INTEGER NOT NULL DEFAULT 0,
        archived INTEGER NOT NULL DEFAULT 0,
        local_path TEXT,
        marker_path TEXT,
        batch_id BIGINT,
        results_state TEXT,
        results_path TEXT,
        results_attempts INTEGER NOT NULL DEFAULT 0,
        results_error TEXT
    )""",
    # A drop is (rule, drop path, fingerprint); at most one live row per (rule, drop path), so
    # two hosts that detect the same drop cannot both record it.
    "CREATE UNIQUE INDEX drops_active ON drops (rule, drop_path) WHERE archived = 0",
    "CREATE INDEX drops_identity ON drops (rule, drop_path, fingerprint)",
    "CREATE INDEX drops_run_id ON drops (run_id)",
    """CREATE INDEX drops_due_order ON drops
        (state, archived, (coalesce(next_attempt_at, created_at)), created_at)""",
    "CREATE INDEX drops_results ON drops (results_state) WHERE results_state IS NOT NULL",
    """CREATE TABLE drop_files (
        drop_id TEXT NOT NULL,
        rel TEXT NOT NULL,
        size BIGINT NOT NULL,
        mtime_ns BIGINT NOT NULL,
        uploaded INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (drop_id, rel)
    )""",
)

_V6: Final = (
    # Claims: who holds a drop's work, until when, and the fencing epoch; each host's heartbeat.
    "ALTER TABLE drops ADD COLUMN claimed_by TEXT",
    "ALTER TABLE drops ADD COLUMN lease_until DOUBLE PRECISION",
    "ALTER TABLE drops ADD COLUMN claim_epoch INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE drops ADD COLUMN submitted_by TEXT",
    "CREATE INDEX drops_claimed_by ON drops (claimed_by) WHERE claimed_by IS NOT NULL",
    """CREATE TABLE hosts (
        host_id TEXT PRIMARY KEY,
        heartbeat_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION NOT NULL
    )""",
)

# (version, statements), ascending; append only, never edit a released step.
MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = ((5, _V5), (6, _V6))

CREATE_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)
# One migrator at a time per schema: daemons on several hosts may start together.
MIGRATION_LOCK: Final = (
    "SELECT pg_advisory_xact_lock(hashtext('aihub-watcher:' || current_schema()))"
)
