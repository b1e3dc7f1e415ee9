"""`ledger migrate`: the SQLite ledger of a state_dir copied into a PostgreSQL database.

Holds the state_dir's lock throughout, so no daemon runs on the ledger while it is copied (nor
starts meanwhile). Imports the config, the ledger and `app.lock`.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.app.lock import StateDirLock
from watcher.config import Config
from watcher.config.keys_state import DSN_SCHEMES
from watcher.errors import AlreadyRunningError, LedgerError
from watcher.ledger import Ledger, ledger_path


@dataclass(frozen=True, slots=True)
class Migrated:
    """What `migrate_to_postgres` copied, and from where to where (the target's password
    masked)."""

    drops: int
    files: int
    source: str
    target: str


def migrate_to_postgres(config: Config, dsn: str) -> Migrated:
    """Copy the SQLite ledger in `config.state_dir` into the (empty) ledger at `dsn`.

    Raises:
        AlreadyRunningError: a daemon holds the state_dir (stop it first).
        LedgerError: no SQLite ledger there, the target is unreachable or already holds drops,
            or psycopg is not installed. Nothing is written to the target then.
    """
    if not dsn.startswith(DSN_SCHEMES):
        raise LedgerError("--to must be a connection URI starting with postgresql://")
    path = ledger_path(config.state_dir)
    if not path.is_file():
        raise LedgerError(f"no ledger at {path}: nothing to migrate")
    lock = StateDirLock(config.state_dir)
    try:
        lock.acquire()
    except AlreadyRunningError as exc:
        raise AlreadyRunningError(
            f"{exc}: stop the daemon before migrating its ledger", pid=exc.pid
        ) from None
    try:
        with Ledger(path) as source, Ledger.on_postgres(dsn) as target:
            copied = target.copy_from(source)
            if target.counts() != source.counts():  # pragma: no cover - a bug, not an input
                raise LedgerError(f"ledger {target.location}: the copy does not match")
            return Migrated(copied.drops, copied.files, source.location, target.location)
    finally:
        lock.release()
