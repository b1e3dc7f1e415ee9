"""The SQLite backend: opening (WAL, synchronous=FULL, read-only for `status`) and transactions.

Owns the sqlite3 connection. Imports only the core (`watcher.errors`), `sqlrows` and
`sqlite.schema`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final
from urllib.parse import quote

from watcher.errors import LedgerError
from watcher.ledger.sqlite.schema import SCHEMA_VERSION, check_not_newer, migrate, read_version
from watcher.ledger.sqlrows import SQLRows

LEDGER_FILENAME: Final = "ledger.sqlite3"
BUSY_TIMEOUT_MS: Final = 5000


def ledger_path(state_dir: Path) -> Path:
    """Where the ledger of `state_dir` lives."""
    return state_dir / LEDGER_FILENAME


# UPDATE/INSERT ... RETURNING (each transition is one statement) came with SQLite 3.35 (2021).
MIN_SQLITE: Final = (3, 35, 0)


def check_sqlite_version() -> None:
    """Raises LedgerError when the SQLite library Python links is older than MIN_SQLITE."""
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise LedgerError(
            f"this Python links SQLite {sqlite3.sqlite_version}; the ledger needs "
            f"{'.'.join(map(str, MIN_SQLITE))} or newer (a newer Python or distribution), or "
            "state.backend: postgresql"
        )


class SQLiteDialect:
    """The shared statements on an sqlite3 connection: `?` placeholders as they are."""

    __slots__ = ("_conn",)
    order_key: Final = "rowid"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, params: Iterable[Sequence[object]]) -> None:
        self._conn.executemany(sql, params)


class SQLiteBackend:
    """One SQLite connection and its transactions.

    Each outermost `write()` is one `BEGIN IMMEDIATE ... COMMIT` (one fsync under
    synchronous=FULL); nested ones join it. Every use holds one lock, so the connection may be
    opened on one thread and used on another.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, *, readonly: bool) -> None:
        """Wrap an open connection; use `open` or `open_readonly` instead."""
        self.path = path
        self.location = str(path)
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = conn
        self._rows = SQLRows(SQLiteDialect(conn), str(path))
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: Path) -> SQLiteBackend:
        """Open or create the ledger file at `path` and migrate it to SCHEMA_VERSION.

        Raises:
            LedgerError: the file is not an SQLite database, is not a ledger, or was written by
                a newer aihub-watcher.
        """
        path = Path(path)
        check_sqlite_version()
        backend = cls(path, _connect(path, str(path), uri=False), readonly=False)
        try:
            backend._setup_writable()
        except BaseException:
            backend.close()
            raise
        return backend

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> SQLiteBackend:
        """Open (creating the directory and file if needed) `state_dir/ledger.sqlite3`.

        Raises:
            LedgerError: as for `open`, or the directory cannot be created.
        """
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create state_dir {state_dir}: {exc}") from exc
        return cls.open(ledger_path(state_dir))

    @classmethod
    def open_readonly(cls, path: Path) -> SQLiteBackend:
        """Open an existing ledger file read-only: never creates it, never writes.

        Raises:
            LedgerError: there is no ledger at `path`, it is unreadable, or its schema is not
                the one this version knows (run the daemon once to migrate it).
        """
        path = Path(path)
        if not path.is_file():
            raise LedgerError(f"no ledger at {path}: has the daemon run with this state_dir?")
        uri = "file:" + quote(str(path.resolve())) + "?mode=ro"
        backend = cls(path, _connect(path, uri, uri=True), readonly=True)
        try:
            backend._check_current()
        except BaseException:
            backend.close()
            raise
        return backend

    def _setup_writable(self) -> None:
        conn = self.connection()
        try:
            # The first real read: a non-SQLite file fails here with "file is not a database".
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"ledger {self.path}: cannot switch to WAL (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            # Keep the WAL file from staying huge after a burst.
            conn.execute("PRAGMA journal_size_limit = 67108864")
            migrate(conn, self.path)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc

    def _check_current(self) -> None:
        # A reader must not migrate: the daemon owns that, and may be running right now.
        try:
            version = read_version(self.connection())
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {self.path}: {exc}") from exc
        if version is None:
            raise LedgerError(f"{self.path} is not an aihub-watcher ledger (no schema_version)")
        check_not_newer(self.path, version)
        if version < SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.path} has schema version {version}, this aihub-watcher uses "
                f"{SCHEMA_VERSION}: start the daemon once to migrate it"
            )

    def connection(self) -> sqlite3.Connection:
        """The open connection (RuntimeError once closed)."""
        if self._conn is None:
            raise RuntimeError(f"ledger {self.path} is closed")
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def schema_version(self) -> int:
        """The schema version of the open file (== SCHEMA_VERSION once opened)."""
        with self._lock:
            try:
                return read_version(self.connection()) or 0
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[SQLRows]:
        """A block of reads under the lock; sqlite3 errors become LedgerError."""
        with self._lock:
            self.connection()  # RuntimeError once closed
            try:
                yield self._rows
            except sqlite3.Error as exc:
                raise LedgerError(f"ledger {self.path}: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[SQLRows]:
        """One write transaction, or a part of the enclosing one; rolled back on any error."""
        if self.readonly:
            raise RuntimeError(f"ledger {self.path} was opened read-only")
        with self._lock:
            conn = self.connection()
            outermost = self._depth == 0
            try:
                if outermost:
                    conn.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield self._rows
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


def _connect(path: Path, target: str, *, uri: bool) -> sqlite3.Connection:
    """A connection to `target` with the busy timeout set; LedgerError naming `path`."""
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False is
        # safe because every use holds the backend's lock (it may be opened via
        # asyncio.to_thread).
        conn = sqlite3.connect(
            target,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=uri,
        )
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
    return conn
