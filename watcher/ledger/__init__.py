"""The durable drop ledger: one row per drop, its state transitions, schema and migrations.

An adapter: imports only the core (`watcher.errors`, `watcher.model`, `watcher.redact`), never
config, hub, fs, pipeline or detect. `Ledger` is the interface; `sqlite` and `postgres` (optional,
psycopg) are the storage backends, over the shared SQL of `sqlrows`.
"""

from watcher.ledger.claims import ClaimLostError, HostBeat
from watcher.ledger.ledger import Ledger, state_counts
from watcher.ledger.sqlite import LEDGER_FILENAME, SCHEMA_VERSION, ledger_path
from watcher.ledger.transitions import new_drop_id

__all__ = [
    "LEDGER_FILENAME",
    "SCHEMA_VERSION",
    "ClaimLostError",
    "HostBeat",
    "Ledger",
    "ledger_path",
    "new_drop_id",
    "state_counts",
]
