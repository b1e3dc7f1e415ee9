"""The PostgreSQL backend: one connection (autocommit between transactions), reconnecting after
the server went away, and the schema migrations under an advisory lock.

Imports psycopg (the `postgres` extra), the core and this package. The DSN may hold a password:
it appears nowhere but in the connect call; messages name the ledger by `redact_dsn(dsn)`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any, Final

import psycopg

from watcher.errors import LedgerError, LedgerUnavailableError
from watcher.ledger.postgres import schema
from watcher.ledger.sqlite import SCHEMA_VERSION
from watcher.ledger.sqlrows import SQLRows
from watcher.redact import redact_dsn, scrub_dsn

CONNECT_TIMEOUT_SECONDS: Final = 10


@lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """The shared statement with psycopg's placeholders (the shared SQL has no other ? or %)."""
    return sql.replace("?", "%s")


class PostgresDialect:
    """The shared statements on a psycopg connection."""

    __slots__ = ("_conn",)
    order_key: Final = "seq"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(_pg(sql), params)

    def executemany(self, sql: str, params: Iterable[Sequence[object]]) -> None:
        rows = list(params)
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(_pg(sql), rows)


class PostgresBackend:
    """One connection to the ledger's schema and its transactions.

    Each outermost `write()` is one transaction (READ COMMITTED; the row being changed is read
    FOR UPDATE, so two writers of one drop take turns); nested ones join it. A connection the
    server dropped is replaced on the next use. Every use holds one lock.
    """

    def __init__(self, dsn: str, *, readonly: bool) -> None:
        """Remember where the ledger is; use `open` instead."""
        self._dsn = dsn
        self.location = redact_dsn(dsn)
        self.path = None
        self.readonly = readonly
        self._lock = threading.RLock()
        self._depth = 0
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        self._read_rows: SQLRows | None = None
        self._write_rows: SQLRows | None = None
        self._idle_limit_ms = 0

    def __repr__(self) -> str:
        return f"PostgresBackend({self.location!r}, {'ro' if self.readonly else 'rw'})"

    @classmethod
    def open(cls, dsn: str, *, readonly: bool = False) -> PostgresBackend:
        """Connect, then migrate the schema to SCHEMA_VERSION (or, read-only, check it is there).

        Raises:
            LedgerError: the server cannot be reached, the schema holds a `drops` table that is
                not a ledger's, is newer than this aihub-watcher, or (read-only) is missing or
                older.
        """
        backend = cls(dsn, readonly=readonly)
        try:
            with backend._lock:
                if readonly:
                    backend._check_current()
                else:
                    backend._migrate()
        except BaseException:
            backend.close()
            raise
        return backend

    def _error(self, exc: BaseException, doing: str = "ledger") -> LedgerError:
        message = scrub_dsn(str(exc).strip(), self._dsn)
        # The server refused, dropped or is shutting down the connection (psycopg's
        # OperationalError), or ended our session (e.g. idle_in_transaction_session_timeout
        # after we were frozen): the ledger is fine, the connection is gone for now.
        conn = self._conn
        gone = conn is not None and (conn.broken or conn.closed)
        unavailable = gone or isinstance(exc, psycopg.OperationalError)
        cls = LedgerUnavailableError if unavailable else LedgerError
        return cls(f"{doing} {self.location}: {message}")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise RuntimeError(f"ledger {self.location} is closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                with suppress(psycopg.Error):
                    conn.close()
            self._conn = None
            conn = self._conn = self._connect()
        return conn

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.Error as exc:
            raise self._error(exc, "cannot open ledger") from None
        try:
            if self.readonly:
                conn.execute("SET default_transaction_read_only = on")
            if self._idle_limit_ms:
                conn.execute(f"SET idle_in_transaction_session_timeout = {self._idle_limit_ms}")
        except psycopg.Error as exc:
            conn.close()
            raise self._error(exc, "cannot open ledger") from None
        self._read_rows = SQLRows(PostgresDialect(conn), self.location)
        self._write_rows = SQLRows(PostgresDialect(conn), self.location, lock=" FOR UPDATE")
        return conn

    def _version(self, conn: psycopg.Connection[Any]) -> int | None:
        """The schema's version; None when there is no schema_version table."""
        tables = conn.execute(
            "SELECT to_regclass('schema_version'), to_regclass('drops')"
        ).fetchone()
        assert tables is not None
        if tables[0] is None:
            if tables[1] is not None:
                raise LedgerError(
                    f"{self.location} has a drops table that is not an aihub-watcher ledger's "
                    "(no schema_version): use another database or schema"
                )
            return None
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def _check_not_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.location} has schema version {version}, newer than this "
                f"aihub-watcher understands ({SCHEMA_VERSION}): upgrade aihub-watcher"
            )

    def _migrate(self) -> None:
        conn = self._connection()
        try:
            with conn.transaction():
                conn.execute(schema.MIGRATION_LOCK)
                version = self._version(conn)
                if version is None:
                    conn.execute(schema.CREATE_VERSION_TABLE)
                    version = 0
                self._check_not_newer(version)
                for number, statements in schema.MIGRATIONS:
                    if number <= version:
                        continue
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                        (number, time.time()),
                    )
        except psycopg.Error as exc:
            raise self._error(exc, "cannot open ledger") from None

    def _check_current(self) -> None:
        # A reader must not migrate: the daemon owns that, and may be running right now.
        try:
            version = self._version(self._connection())
        except psycopg.Error as exc:
            raise self._error(exc, "cannot read ledger") from None
        if version is None:
            raise LedgerError(
                f"no ledger at {self.location}: has the daemon run with this state.dsn?"
            )
        self._check_not_newer(version)
        if version < SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.location} has schema version {version}, this aihub-watcher uses "
                f"{SCHEMA_VERSION}: start the daemon once to migrate it"
            )

    def limit_idle_transactions(self, seconds: float) -> None:
        """Have the server end this session when a transaction of ours stays idle this long:
        only a frozen process (SIGSTOP, a hung host) does that, and the row locks it holds
        must not stop the other hosts for longer."""
        with self._lock:
            self._idle_limit_ms = max(1, round(seconds * 1000))
            conn = self._connection()
            try:
                conn.execute(f"SET idle_in_transaction_session_timeout = {self._idle_limit_ms}")
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                with suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None

    def schema_version(self) -> int:
        """The schema version of the open ledger (== SCHEMA_VERSION once opened)."""
        with self._lock:
            try:
                return self._version(self._connection()) or 0
            except psycopg.Error as exc:
                raise self._error(exc) from None

    @contextmanager
    def read(self) -> Iterator[SQLRows]:
        """A block of reads under the lock; psycopg errors become LedgerError."""
        with self._lock:
            self._connection()  # RuntimeError once closed
            rows = self._write_rows if self._depth else self._read_rows
            assert rows is not None
            try:
                yield rows
            except psycopg.Error as exc:
                raise self._error(exc) from None

    @contextmanager
    def write(self) -> Iterator[SQLRows]:
        """One write transaction, or a part of the enclosing one; rolled back on any error."""
        if self.readonly:
            raise RuntimeError(f"ledger {self.location} was opened read-only")
        with self._lock:
            conn = self._connection()
            rows = self._write_rows
            assert rows is not None
            if self._depth:
                self._depth += 1
                try:
                    yield rows
                except psycopg.Error as exc:
                    # A caller inside the batch sees a LedgerError too, not the driver's error.
                    raise self._error(exc) from None
                finally:
                    self._depth -= 1
                return
            try:
                with conn.transaction():
                    self._depth += 1
                    try:
                        yield rows
                    finally:
                        self._depth -= 1
            except psycopg.Error as exc:
                raise self._error(exc) from None
