"""The two ledger backends for tests: a SQLite file, or a PostgreSQL schema of its own.

The PostgreSQL server is the one at $AIHUB_WATCHER_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test). Each test gets a fresh schema, dropped afterwards,
so tests run in parallel under xdist. Without a server (or without psycopg) the PostgreSQL tests
are skipped, saying why; under CI=true they fail instead.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from watcher.ledger import Ledger

PG_URL = os.environ.get("AIHUB_WATCHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def _no_server_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install -e '.[postgres]'"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL server at {PG_URL}: {str(exc).strip()}"
    return None


def require_postgres() -> None:
    """Skip the calling test without a server; under CI=true, fail it."""
    reason = _no_server_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the PostgreSQL tests to run", pytrace=False)
    pytest.skip(reason)


def dsn_for(schema: str, base: str = PG_URL) -> str:
    """The DSN of `schema` in the test database (search_path set through `options`)."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A new empty schema in the test database; yields its DSN; dropped (cascade) afterwards."""
    import psycopg

    require_postgres()
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield dsn_for(name)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@dataclass(frozen=True)
class Store:
    """Where one test's ledger lives; `open()` opens (creating) it, as often as needed."""

    backend: str
    path: Path | None = None
    dsn: str | None = None

    def open(self) -> Ledger:
        if self.dsn is not None:
            return Ledger.on_postgres(self.dsn)
        assert self.path is not None
        return Ledger(self.path)


@contextmanager
def store_for(backend: str, tmp_path: Path) -> Iterator[Store]:
    if backend == "sqlite":
        yield Store("sqlite", path=tmp_path / "ledger.sqlite3")
        return
    with pg_schema() as dsn:
        yield Store("postgresql", dsn=dsn)
