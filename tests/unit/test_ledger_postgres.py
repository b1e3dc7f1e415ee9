"""The PostgreSQL backend's own behaviour: schema versions, read-only opening, a password that
never shows, reconnecting, and a clear error without psycopg. (The contract every backend keeps
is in test_ledger_{transitions,matrix,reads,stages}.py, run on both.)"""

from __future__ import annotations

import sys

import pytest

from tests.ledger_stores import PG_URL
from tests.unit.ledger_helpers import NOW, ready
from watcher.errors import LedgerError
from watcher.ledger import SCHEMA_VERSION, Ledger
from watcher.model import DropState

PASSWORD = "pw-never-shown-42"


def _sql(dsn: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def test_the_last_postgres_migration_is_the_ledger_schema_version() -> None:
    """A ledger change needs a step for each backend: both end at one SCHEMA_VERSION."""
    pytest.importorskip("psycopg")
    from watcher.ledger.postgres.schema import MIGRATIONS

    assert MIGRATIONS[-1][0] == SCHEMA_VERSION
    assert [v for v, _ in MIGRATIONS] == sorted({v for v, _ in MIGRATIONS})


def test_a_new_schema_is_created_once_and_kept(pg_dsn: str) -> None:
    """The first open creates the tables at SCHEMA_VERSION; a reopen keeps the rows and
    migrates nothing again (the schema_version rows, with when each was applied, stay as they
    were)."""
    with Ledger.on_postgres(pg_dsn) as led:
        assert led.schema_version() == SCHEMA_VERSION
        d = ready(led)
    applied = _sql(pg_dsn, "SELECT * FROM schema_version ORDER BY version")
    assert applied[-1][0] == SCHEMA_VERSION
    with Ledger.on_postgres(pg_dsn) as again:
        assert again.get(d.id) == d
    assert _sql(pg_dsn, "SELECT * FROM schema_version ORDER BY version") == applied


def test_a_newer_schema_is_refused(pg_dsn: str) -> None:
    Ledger.on_postgres(pg_dsn).close()
    _sql(pg_dsn, "INSERT INTO schema_version VALUES (%s, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(LedgerError, match=r"newer than this aihub-watcher"):
        Ledger.on_postgres(pg_dsn)


def test_a_foreign_drops_table_is_refused(pg_dsn: str) -> None:
    """Another application's `drops` table in the schema is never adopted."""
    _sql(pg_dsn, "CREATE TABLE drops (x int)")
    with pytest.raises(LedgerError, match=r"not an aihub-watcher ledger"):
        Ledger.on_postgres(pg_dsn)


def test_read_only_needs_an_existing_ledger_and_never_writes(pg_dsn: str) -> None:
    """`status` on PostgreSQL: no ledger yet is an error; an existing one reads, never writes."""
    with pytest.raises(LedgerError, match=r"no ledger at .*has the daemon run"):
        Ledger.on_postgres(pg_dsn, readonly=True)
    assert _sql(pg_dsn, "SELECT to_regclass('drops')") == [(None,)]
    with Ledger.on_postgres(pg_dsn) as led:
        d = ready(led)
    with Ledger.on_postgres(pg_dsn, readonly=True) as ro:
        assert ro.readonly and ro.get(d.id) == d
        with pytest.raises(RuntimeError, match="read-only"):
            ro.archive(d.id, now=NOW)


def test_one_live_row_per_drop_across_hosts(pg_dsn: str) -> None:
    """Two hosts that detect one drop cannot both record it: the second gets the first's row."""
    with Ledger.on_postgres(pg_dsn) as one, Ledger.on_postgres(pg_dsn) as two:
        first = ready(one)
        with pytest.raises(RuntimeError, match="already has live row"):
            ready(two)
        # Past that check (a race): the unique index holds, and the insert yields the live row.
        with two._backend.write() as rows:
            got = rows.insert(
                drop_id="d-000000000001",
                rule="r",
                drop="a",
                fingerprint="fp2",
                state=DropState.READY,
                input_dir=None,
                deployment_id=None,
                now=NOW,
            )
        assert got == first
        assert two.all_drops() == [first]


def test_the_password_never_shows(pg_dsn: str) -> None:
    """Not in the repr, nor in the error of a server that cannot be reached."""
    with_password = pg_dsn.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    assert with_password != pg_dsn
    with Ledger.on_postgres(with_password) as led:  # trust auth: the password is not checked
        assert PASSWORD not in repr(led) and PASSWORD not in led.location
        assert "postgres:***@" in repr(led)
    unreachable = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test"
    with pytest.raises(LedgerError) as info:
        Ledger.on_postgres(unreachable)
    assert PASSWORD not in str(info.value) and info.value.__cause__ is None
    assert "127.0.0.1:1" in str(info.value)


def test_a_dropped_connection_is_replaced(pg_dsn: str) -> None:
    """The server ends the session (restart, failover): that call fails, the next reconnects."""
    with Ledger.on_postgres(pg_dsn) as led:
        d = ready(led)
        pid = led._backend._conn.info.backend_pid
        assert _sql(PG_URL, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
        with pytest.raises(LedgerError, match=r"terminat|closed|lost|server"):
            led.get(d.id)
        assert led.get(d.id) == d
        assert led._backend._conn.info.backend_pid != pid


def test_without_psycopg_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m.startswith(("psycopg", "watcher.ledger.postgres"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(LedgerError, match=r"pip install 'aihub-watcher\[postgres\]'"):
        Ledger.on_postgres("postgresql://nobody@127.0.0.1/none")
