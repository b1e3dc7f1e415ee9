"""A PostgreSQL ledger whose server drops the connection (a restart, a network cut) says so
with LedgerUnavailableError, inside a batch too, and reconnects on the next use.

The daemon holds on that error instead of exiting (watcher/app/outage.py); before, a dropped
connection inside a batch escaped as the driver's own error and a drop's intake logged it as
that drop's failure. The connection is cut with pg_terminate_backend, as a server restart does.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.ledger_stores import PG_URL
from tests.unit.ledger_helpers import NOW, ready
from watcher.errors import LedgerUnavailableError
from watcher.ledger import Ledger


def _cut(led: Ledger) -> None:
    conn = led._backend._conn  # type: ignore[attr-defined]
    assert conn is not None
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))


def test_a_dropped_connection_is_unavailable_then_reconnects(pg_dsn) -> None:
    with Ledger.on_postgres(pg_dsn) as led:
        d = ready(led)
        _cut(led)
        with pytest.raises(LedgerUnavailableError, match="terminating connection"):
            led.get(d.id)
        again = led.get(d.id)  # a new connection
        assert again is not None and again.id == d.id


def test_inside_a_batch_the_caller_sees_the_ledger_error(pg_dsn) -> None:
    with Ledger.on_postgres(pg_dsn) as led:
        ready(led)
        seen: list[BaseException] = []
        with pytest.raises(LedgerUnavailableError), led.batch():
            _cut(led)
            try:
                ready(led, "b", now=NOW + 1)
            except Exception as exc:  # what intake's per-drop guard catches
                seen.append(exc)
                raise
        assert [type(e) for e in seen] == [LedgerUnavailableError]
        assert {d.drop for d in led.active_drops()} == {"a"}  # the batch was rolled back


def test_a_session_the_server_ended_is_unavailable(pg_dsn) -> None:
    """A host frozen inside a transaction has its session ended by the server (the idle
    transaction limit claims set); on waking, that is an outage to hold on, not a crash."""
    with Ledger.on_postgres(pg_dsn) as led:
        led.act_as("host-a", lease_s=0.3)  # transactions idle for 1 s (the floor) are ended
        d = ready(led)
        with pytest.raises(LedgerUnavailableError, match="idle-in-transaction"), led.batch():
            led.get(d.id)
            time.sleep(1.3)
            led.get(d.id)
        assert led.get(d.id) is not None  # a new session
