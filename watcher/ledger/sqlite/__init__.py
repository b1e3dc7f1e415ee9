"""The SQLite ledger backend: one file per state_dir (WAL, synchronous=FULL).

The only sqlite3 user in watcher. Imports only the core (`watcher.errors`, `watcher.model`).
"""

from watcher.ledger.sqlite.connection import LEDGER_FILENAME, SQLiteBackend, ledger_path
from watcher.ledger.sqlite.schema import SCHEMA_VERSION

__all__ = ["LEDGER_FILENAME", "SCHEMA_VERSION", "SQLiteBackend", "ledger_path"]
