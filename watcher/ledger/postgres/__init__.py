"""The PostgreSQL ledger backend: one schema of a database shared by every host.

The only psycopg user in watcher, and imported only when `state.backend` is postgresql: the
`postgres` extra (`pip install 'aihub-watcher[postgres]'`) is optional.
"""

from watcher.ledger.postgres.connection import PostgresBackend

__all__ = ["PostgresBackend"]
