"""`LedgerBase`: opening a ledger on its backend (SQLite, or PostgreSQL when the `postgres`
extra is installed), its lifecycle and its reads. `Ledger` adds the writes.

Imports only the core (`watcher.errors`, `watcher.model`) and this package; never config, hub,
fs, pipeline or detect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from watcher.errors import LedgerError
from watcher.ledger.backend import Backend
from watcher.ledger.claims import Claims, HostBeat
from watcher.ledger.queue import DueQueue
from watcher.ledger.sqlite import SQLiteBackend
from watcher.ledger.stages import StageLedger
from watcher.model import Drop, DropState

if TYPE_CHECKING:
    from watcher.ledger.postgres import PostgresBackend

NO_PSYCOPG: Final = (
    "state.backend postgresql needs psycopg 3, which is not installed: "
    "pip install 'aihub-watcher[postgres]'"
)


def _postgres() -> type[PostgresBackend]:
    """The PostgreSQL backend class, imported only now: psycopg is an optional extra.

    Raises:
        LedgerError: psycopg is not installed.
    """
    try:
        from watcher.ledger.postgres import PostgresBackend
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("psycopg"):
            raise
        raise LedgerError(NO_PSYCOPG) from None
    return PostgresBackend


class LedgerBase(DueQueue):
    """An open ledger and its reads (each one read block); `Ledger` adds the writes."""

    # Set by `Ledger.act_as` on a ledger several hosts share; None on a single host.
    _claims: Claims | None = None

    def __init__(self, path: Path) -> None:
        """Open or create the ledger at `path` and migrate it to `SCHEMA_VERSION`.

        Raises:
            LedgerError: the file is not an SQLite database, is not a ledger, or was written by
                a newer aihub-watcher.
        """
        self._backend: Backend = SQLiteBackend.open(path)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Self:
        """Open (creating the directory and file if needed) `state_dir/ledger.sqlite3`.

        Raises:
            LedgerError: as for `Ledger(path)`, or the directory cannot be created.
        """
        return cls._on(SQLiteBackend.in_state_dir(state_dir))

    @classmethod
    def open_readonly(cls, path: Path) -> Self:
        """Open an existing ledger read-only (for `status`): never creates it, never writes.

        Raises:
            LedgerError: there is no ledger at `path`, it is unreadable, or its schema is not
                the one this version knows (run the daemon once to migrate it).
        """
        return cls._on(SQLiteBackend.open_readonly(path))

    @classmethod
    def on_postgres(cls, dsn: str, *, readonly: bool = False) -> Self:
        """Open the ledger in the PostgreSQL database (and schema) of `dsn`: created and
        migrated to SCHEMA_VERSION, or, read-only (`status`), only checked.

        Raises:
            LedgerError: psycopg is not installed, the server cannot be reached, or the schema
                is not a ledger, is newer, or (read-only) is missing or older. The message
                names the DSN without its password.
        """
        return cls._on(_postgres().open(dsn, readonly=readonly))

    @classmethod
    def _on(cls, backend: Backend) -> Self:
        # Bypasses __init__, which opens a writable SQLite file.
        ledger = cls.__new__(cls)
        ledger._backend = backend
        return ledger

    @property
    def path(self) -> Path | None:
        """The ledger's file (SQLite); None for a database server."""
        return self._backend.path

    @property
    def location(self) -> str:
        """Where the ledger lives: a file path, or a DSN without its password."""
        return self._backend.location

    @property
    def readonly(self) -> bool:
        """True when opened with `open_readonly`: every write raises RuntimeError."""
        return self._backend.readonly

    def close(self) -> None:
        """Close the ledger (idempotent). Any later use raises RuntimeError."""
        self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.location!r}, {'ro' if self.readonly else 'rw'})"

    @property
    def stages(self) -> StageLedger:
        """The calls of the remote check, the uploader and the results fetcher."""
        fence = self._claims.fence if self._claims is not None else None
        return StageLedger(self._backend.read, self._backend.write, fence)

    def schema_version(self) -> int:
        """The schema version of the open ledger (== SCHEMA_VERSION once opened)."""
        return self._backend.schema_version()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the write calls inside into ONE transaction (one fsync), all or nothing.

        Nested batches join the outer one. On any exception everything in the batch is rolled
        back. The Drops returned inside reflect uncommitted state until the block exits.
        """
        with self._backend.write():
            yield

    # --- reads --------------------------------------------------------------------------------

    def get(self, drop_id: str) -> Drop | None:
        """The row with this id (archived or not)."""
        with self._backend.read() as rows:
            return rows.get(drop_id)

    def find_active(self, rule: str, drop: str) -> Drop | None:
        """The live (not archived) row for (rule, drop), if any. There is at most one."""
        with self._backend.read() as rows:
            return rows.find_active(rule, drop)

    def find_active_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Drop]:
        """The live rows of these (rule, drop) pairs, in one read: a pair without one is
        absent from the result."""
        by_rule: dict[str, list[str]] = {}
        for rule, drop in keys:
            by_rule.setdefault(rule, []).append(drop)
        with self._backend.read() as rows:
            return {
                (d.rule, d.drop): d
                for rule, drops in by_rule.items()
                for d in rows.find_active_many(rule, drops)
            }

    def in_state(self, *states: DropState, include_archived: bool = False) -> list[Drop]:
        """Rows in any of `states` (live ones unless include_archived), oldest first."""
        if not states:
            return []
        with self._backend.read() as rows:
            return rows.in_state(states, include_archived=include_archived)

    def active_drops(self) -> list[Drop]:
        """Every live (not archived) row, oldest first."""
        return self.all_drops(include_archived=False)

    def all_drops(self, *, include_archived: bool = True) -> list[Drop]:
        """Every row, oldest first."""
        with self._backend.read() as rows:
            return rows.all_drops(include_archived=include_archived)

    def counts(self) -> dict[str, int]:
        """Drops per state, archived ones included (a drop moved away after its run is still
        complete); every DropState value is a key (0 when none)."""
        result = {state.value: 0 for state in DropState}
        with self._backend.read() as rows:
            result.update(rows.counts())
        return result

    def hosts(self) -> list[HostBeat]:
        """Every host that ever beat on this ledger, by id (none on a single host)."""
        with self._backend.read() as rows:
            return [HostBeat(*row) for row in rows.hosts()]
