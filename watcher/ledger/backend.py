"""What a ledger storage backend provides: transactions and the queries/writes on drop rows.

SQLite (`watcher.ledger.sqlite`) and PostgreSQL (`watcher.ledger.postgres`) implement it, over
the shared SQL of `watcher.ledger.sqlrows`. Imports only the core (`watcher.model`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from watcher.model import Drop, DropFile, DropState, StateCount


class Queries(Protocol):
    """The reads available inside any transaction of a backend."""

    @property
    def location(self) -> str:
        """Where the ledger lives (a file path, or a DSN without its password), for messages."""
        ...

    def get(self, drop_id: str) -> Drop | None:
        """The row with this id (archived or not)."""
        ...

    def find_active(self, rule: str, drop: str) -> Drop | None:
        """The live (not archived) row for (rule, drop), if any."""
        ...

    def find_active_many(self, rule: str, drops: Sequence[str]) -> list[Drop]:
        """The live rows of these drops of `rule` (at most one each), in no order."""
        ...

    def due(
        self,
        now: float,
        limit: int,
        *,
        skip_rules: Collection[str] = (),
        priority: Mapping[str, int] | None = None,
    ) -> list[Drop]:
        """Live `ready` rows whose next_attempt_at is NULL or <= now, except those of
        `skip_rules`; higher `priority` of their rule first (absent: 0), then longest-waiting
        (coalesce(next_attempt_at, created_at), created_at)."""
        ...

    def next_due_at(self, *, skip_rules: Collection[str] = ()) -> float | None:
        """The earliest coalesce(next_attempt_at, created_at) among live `ready` rows, except
        those of `skip_rules`."""
        ...

    def next_due_for(
        self, host: str, now: float, *, skip_rules: Collection[str] = ()
    ) -> float | None:
        """`next_due_at` among the live `ready` rows `host` may claim at `now`."""
        ...

    def in_state(self, states: Sequence[DropState], *, include_archived: bool) -> list[Drop]:
        """Rows in any of `states` (non-empty), oldest first."""
        ...

    def all_drops(self, *, include_archived: bool) -> list[Drop]:
        """Every row, oldest first."""
        ...

    def counts(self) -> dict[str, int]:
        """Rows per state value, archived ones included (states without rows are absent)."""
        ...

    def state_counts(self, now: float) -> list[StateCount]:
        """Rows per (rule, state), archived ones included; with the live rows due by `now`
        and the oldest live created_at of each group."""
        ...

    def files_of(self, drop_id: str) -> list[DropFile]:
        """The files recorded for a drop, by relative path."""
        ...

    def results_pending(self) -> list[Drop]:
        """Live rows whose run's results are still to be saved, oldest first."""
        ...

    def hosts(self) -> list[tuple[str, float, float]]:
        """(host_id, heartbeat_at, started_at) of every host that ever beat, by id."""
        ...


class Rows(Queries, Protocol):
    """The reads and writes inside a write transaction."""

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
        """Add a live row with attempts=0 and created_at=updated_at=now; return it."""
        ...

    def update(self, drop_id: str, values: Mapping[str, object]) -> None:
        """Set these columns (names from `watcher.ledger` only, never from input) of one row."""
        ...

    def update_live(
        self,
        drop_id: str,
        values: Mapping[str, object],
        states: Collection[DropState],
        *,
        add: Mapping[str, int] | None = None,
    ) -> Drop | None:
        """Set these columns (and add `add` to those counters) of the row if it is live and in
        one of `states`: the new row, or None (nothing written)."""
        ...

    def replace_files(self, drop_id: str, files: Sequence[DropFile]) -> None:
        """Record exactly these files for the drop (none uploaded yet)."""
        ...

    def set_uploaded(self, drop_id: str, rel: str, uploaded: bool) -> None:
        """Mark one file of the drop as uploaded (or not)."""
        ...

    def clear_uploaded(self, drop_id: str) -> None:
        """Mark every file of the drop as not uploaded (a new batch)."""
        ...

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
        """Live rows in `states`, unclaimed, claimed by `host` or with a lease ended by `now`
        (only the ones due at `due_at`, when given), locked for this transaction; rows another
        transaction holds are skipped."""
        ...

    def beat(self, host: str, now: float, lease_until: float) -> int:
        """Record `host`'s heartbeat; extend its unexpired leases; return how many."""
        ...


class Backend(Protocol):
    """One open ledger store. Thread-safe; a closed or read-only one raises RuntimeError on use.

    Every `write()` block is one transaction, durable when the outermost block exits; nested
    blocks join the outer one. Storage errors surface as LedgerError.
    """

    @property
    def path(self) -> Path | None:
        """The ledger's file (SQLite); None for a database server."""
        ...

    @property
    def location(self) -> str:
        """Where the ledger lives (a file path, or a DSN without its password)."""
        ...

    @property
    def readonly(self) -> bool:
        """True when opened for reading only."""
        ...

    def read(self) -> AbstractContextManager[Queries]:
        """A block of reads."""
        ...

    def write(self) -> AbstractContextManager[Rows]:
        """A write transaction (all or nothing)."""
        ...

    def schema_version(self) -> int:
        """The schema version of the open store."""
        ...

    def close(self) -> None:
        """Release the store (idempotent)."""
        ...
