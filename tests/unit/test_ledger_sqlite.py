"""The SQLite ledger file: WAL and fsync settings, transactions and batches, migrations, refusal
of bad files, read-only opening and concurrent access from a second process or thread.

Every test uses a real SQLite file in tmp_path.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.unit.ledger_helpers import NOW, make_in_state, ready
from watcher.errors import LedgerError
from watcher.ledger import SCHEMA_VERSION, Ledger, ledger_path
from watcher.ledger.sqlite import SQLiteBackend
from watcher.model import DropState, SubmittedRun


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as led:
        yield led


def connection_of(led: Ledger) -> sqlite3.Connection:
    """The connection the ledger writes through."""
    backend = led._backend
    assert isinstance(backend, SQLiteBackend)
    return backend.connection()


# --- opening -------------------------------------------------------------------------------


def test_new_ledger_is_wal_full_sync_at_latest_schema(tmp_path: Path) -> None:
    """A new file is created in WAL mode with synchronous=FULL at the latest schema version."""
    path = tmp_path / "new.sqlite3"
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        conn = connection_of(led)
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_an_sqlite_library_without_returning_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite older than 3.35 (no RETURNING) would fail at the first drop: the ledger refuses
    to open and says which version it found and what to use instead."""
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(LedgerError, match=r"SQLite 3\.34\.1.*3\.35\.0 or newer.*postgresql"):
        Ledger.in_state_dir(tmp_path / "state")
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()


def test_in_state_dir_creates_the_directory(tmp_path: Path) -> None:
    """in_state_dir makes state_dir (and parents) and opens state_dir/ledger.sqlite3."""
    state_dir = tmp_path / "a" / "b"
    with Ledger.in_state_dir(state_dir) as led:
        assert led.path == ledger_path(state_dir) == state_dir / "ledger.sqlite3"
    assert (state_dir / "ledger.sqlite3").is_file()


def test_closed_ledger_is_a_bug(tmp_path: Path) -> None:
    """Using a closed ledger raises RuntimeError; close is idempotent."""
    led = Ledger(tmp_path / "l.sqlite3")
    led.close()
    led.close()
    with pytest.raises(RuntimeError, match="closed"):
        led.counts()


# --- transactions and batches -------------------------------------------------------------


def test_each_write_is_visible_to_another_connection_on_return(tmp_path: Path) -> None:
    """Every write method commits before it returns (no open transaction left behind)."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as led:
        d = ready(led)
        led.begin_submit(d.id, now=NOW)
        assert not connection_of(led).in_transaction
        other = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert other.execute("SELECT state FROM drops").fetchall() == [("submitting",)]
        finally:
            other.close()


def test_batched_writes_commit_together(ledger: Ledger) -> None:
    """begin_submit_many / mark_submitted_many apply every item in one transaction."""
    drops = [ready(ledger, f"b{i}") for i in range(5)]
    started = ledger.begin_submit_many([d.id for d in drops], now=NOW + 1)
    assert [d.state for d in started] == [DropState.SUBMITTING] * 5
    done = ledger.mark_submitted_many(
        [
            SubmittedRun(drop_id=d.id, run_id=f"run{i}", run_status="RUNNING", response="{}")
            for i, d in enumerate(started)
        ],
        now=NOW + 2,
    )
    assert [d.run_id for d in done] == [f"run{i}" for i in range(5)]
    assert ledger.counts()["submitted"] == 5


def test_batch_is_all_or_nothing(ledger: Ledger) -> None:
    """One impossible transition in a batch rolls back the whole batch."""
    a, b = ready(ledger, "a"), ready(ledger, "b")
    bad = make_in_state(ledger, DropState.SUBMITTED, "c")
    before = ledger.all_drops()
    with pytest.raises(RuntimeError):
        ledger.begin_submit_many([a.id, b.id, bad.id], now=NOW + 1)
    assert ledger.all_drops() == before
    with pytest.raises(ValueError, match="boom"), ledger.batch():
        ready(ledger, "new")
        with ledger.batch():  # nested batches join the outer one
            ledger.begin_submit(a.id, now=NOW)
        raise ValueError("boom")
    assert ledger.all_drops() == before


# --- files: migration, refusal, read-only ------------------------------------------------

V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL);
CREATE TABLE drops (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, drop_path TEXT NOT NULL,
    fingerprint TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL, attempt_id TEXT, intent_at REAL, run_id TEXT, run_status TEXT,
    last_error TEXT, last_response TEXT, input_dir TEXT, deployment_id TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, submitted_at REAL, finished_at REAL,
    post_action_done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX drops_rule_drop ON drops (rule, drop_path);
CREATE INDEX drops_due ON drops (state, next_attempt_at);
INSERT INTO schema_version VALUES (1, 0);
"""


def write_v1(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(V1_SCHEMA)
        rows = [
            ("d-000000000001", "r", "a", "fp1", "complete", 1, "run-1", 10.0),
            ("d-000000000002", "r", "a", "fp2", "submitted", 1, "run-2", 20.0),
            ("d-000000000003", "r", "b", "fp3", "ready", 0, None, 30.0),
        ]
        conn.executemany(
            "INSERT INTO drops (id, rule, drop_path, fingerprint, state, attempts, run_id, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*r, r[-1]) for r in rows],
        )
        conn.commit()
    finally:
        conn.close()


def index_names(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
        return [name for (name,) in rows if not name.startswith("sqlite_autoindex")]
    finally:
        conn.close()


def test_opening_a_v1_ledger_migrates_it(tmp_path: Path) -> None:
    """A v1 file is migrated in place: rows kept, older duplicates archived, new columns usable."""
    path = tmp_path / "old.sqlite3"
    write_v1(path)
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        drops = {d.id: d for d in led.all_drops()}
        assert set(drops) == {"d-000000000001", "d-000000000002", "d-000000000003"}
        assert drops["d-000000000001"].archived  # superseded by the newer row for r/a
        assert not drops["d-000000000002"].archived
        assert led.find_active("r", "a") == drops["d-000000000002"]
        assert drops["d-000000000002"].run_id == "run-2"
        assert [d.id for d in led.due(100.0)] == ["d-000000000003"]
        led.begin_submit("d-000000000003", now=101.0)
    # The same indexes as a new file (the run_id one included).
    with Ledger(tmp_path / "new.sqlite3"):
        pass
    assert index_names(path) == index_names(tmp_path / "new.sqlite3")
    # Reopening a migrated file applies nothing twice.
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        assert len(led.all_drops()) == 3


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A ledger written by a newer aihub-watcher raises LedgerError naming both versions."""
    path = tmp_path / "future.sqlite3"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 7,))
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match=rf"schema version {SCHEMA_VERSION + 7}, newer"):
        Ledger(path)
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open_readonly(path)


def test_a_corrupt_file_is_a_ledger_error_naming_the_path(tmp_path: Path) -> None:
    """A file that is not SQLite raises LedgerError with its path, and is left untouched."""
    path = tmp_path / "garbage.sqlite3"
    content = b"this is not a database, just some bytes\n" * 200
    path.write_bytes(content)
    with pytest.raises(LedgerError, match=re.escape(str(path))):
        Ledger(path)
    with pytest.raises(LedgerError, match=re.escape(str(path))):
        Ledger.open_readonly(path)
    assert path.read_bytes() == content


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    """An SQLite file with foreign tables is not mistaken for an empty ledger."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="not an aihub-watcher ledger"):
        Ledger(path)


def test_unopenable_path_is_a_ledger_error(tmp_path: Path) -> None:
    """A path whose directory does not exist raises LedgerError naming it."""
    path = tmp_path / "missing-dir" / "l.sqlite3"
    with pytest.raises(LedgerError, match=re.escape(str(path))):
        Ledger(path)


def test_open_readonly_never_creates_a_ledger(tmp_path: Path) -> None:
    """open_readonly of a missing file raises "has the daemon run" and creates nothing."""
    path = tmp_path / "ledger.sqlite3"
    with pytest.raises(
        LedgerError, match=r"no ledger at .*: has the daemon run with this state_dir\?"
    ):
        Ledger.open_readonly(path)
    assert list(tmp_path.iterdir()) == []


def test_open_readonly_reads_and_refuses_writes(tmp_path: Path) -> None:
    """A read-only ledger sees the data and treats any write as a bug."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as led:
        d = ready(led)
    with Ledger.open_readonly(path) as ro:
        assert ro.readonly
        assert ro.get(d.id) == d
        assert ro.counts()["ready"] == 1
        with pytest.raises(RuntimeError, match="read-only"):
            ro.begin_submit(d.id, now=NOW)


def test_open_readonly_refuses_an_unmigrated_ledger(tmp_path: Path) -> None:
    """status on a v1 file asks for the daemon to migrate it first instead of migrating."""
    path = tmp_path / "old.sqlite3"
    write_v1(path)
    with pytest.raises(LedgerError, match="start the daemon once to migrate"):
        Ledger.open_readonly(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
    conn.close()


# --- concurrency -------------------------------------------------------------------------


def test_a_reader_is_not_blocked_by_an_open_write(tmp_path: Path) -> None:
    """While the daemon is inside a write transaction, a status reader sees the last commit."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as daemon:
        d = ready(daemon)
        with Ledger.open_readonly(path) as status:
            with daemon.batch():
                daemon.begin_submit(d.id, now=NOW + 1)
                seen = status.get(d.id)
                assert seen is not None and seen.state is DropState.READY
            seen = status.get(d.id)
            assert seen is not None and seen.state is DropState.SUBMITTING


def test_cli_rearm_waits_for_the_daemon_and_loses_nothing(tmp_path: Path) -> None:
    """A second writer (retry CLI) waits out the daemon's transaction; both writes survive."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as daemon:
        failed = make_in_state(daemon, DropState.FAILED, "f")
        other = ready(daemon, "o")
        done = threading.Event()
        errors: list[BaseException] = []

        def cli() -> None:
            try:
                with Ledger(path) as led:
                    led.rearm(failed.id, now=NOW + 100)
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        with daemon.batch():
            daemon.begin_submit(other.id, now=NOW + 1)
            thread = threading.Thread(target=cli)
            thread.start()
            # The CLI cannot commit while the daemon holds the write lock.
            assert not done.wait(0.3)
        wait_until(done.is_set, timeout=5, what="the CLI rearm to finish")
        thread.join()
        assert errors == []
        got_failed, got_other = daemon.get(failed.id), daemon.get(other.id)
        assert got_failed is not None and got_failed.state is DropState.READY
        assert got_other is not None and got_other.state is DropState.SUBMITTING
