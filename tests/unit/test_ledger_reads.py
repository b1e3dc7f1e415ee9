"""Ledger reads: the due queue, counts and the state filter.

Every test runs on both backends: a real SQLite file, and a PostgreSQL schema of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ledger_stores import Store
from tests.unit.ledger_helpers import NOW, make_in_state, ready
from watcher.ledger import Ledger
from watcher.model import DropState


@pytest.fixture
def ledger(ledger_store: Store) -> Iterator[Ledger]:
    with ledger_store.open() as led:
        yield led


def test_due_orders_by_waiting_time_and_respects_next_attempt(ledger: Ledger) -> None:
    """due() returns live ready rows whose time has come, longest-waiting first, up to limit."""
    a = ready(ledger, "a", now=NOW)
    b = ready(ledger, "b", now=NOW + 10)
    c = ready(ledger, "c", now=NOW + 20)
    # a failed once and must wait until NOW+100; b until NOW+15 (earlier than c's arrival)
    a = ledger.schedule_retry(
        ledger.begin_submit(a.id, now=NOW + 1).id, next_attempt_at=NOW + 100, error="e", now=NOW + 2
    )
    b = ledger.schedule_retry(
        ledger.begin_submit(b.id, now=NOW + 11).id,
        next_attempt_at=NOW + 15,
        error="e",
        now=NOW + 12,
    )
    gone = ready(ledger, "gone", now=NOW - 50)
    ledger.archive(gone.id)
    make_in_state(ledger, DropState.SUBMITTED, "s")

    # A new drop (next_attempt_at NULL) is due at once; retries only when their time comes.
    assert [d.id for d in ledger.due(NOW + 14)] == [c.id]
    assert [d.id for d in ledger.due(NOW + 15)] == [b.id, c.id]
    assert [d.id for d in ledger.due(NOW + 50)] == [b.id, c.id]
    assert [d.id for d in ledger.due(NOW + 100)] == [b.id, c.id, a.id]
    assert [d.id for d in ledger.due(NOW + 100, limit=2)] == [b.id, c.id]
    assert ledger.next_due_at() == NOW + 15


def test_due_puts_higher_priority_rules_first_then_the_longest_waiting(ledger: Ledger) -> None:
    """With priorities, a newer drop of a higher-priority rule comes before older ones; rules
    left out of the map count 0, and equal priorities keep the waiting order."""
    low1 = ready(ledger, "l1", rule="low", now=NOW)
    none1 = ready(ledger, "n1", rule="unlisted", now=NOW + 1)
    high1 = ready(ledger, "h1", rule="high", now=NOW + 2)
    low2 = ready(ledger, "l2", rule="low", now=NOW + 3)
    high2 = ready(ledger, "h2", rule="high", now=NOW + 4)
    prio = {"high": 10, "low": -1}
    got = [d.id for d in ledger.due(NOW + 10, priority=prio)]
    assert got == [high1.id, high2.id, none1.id, low1.id, low2.id]
    assert [d.id for d in ledger.due(NOW + 10, limit=2, priority=prio)] == [high1.id, high2.id]
    # All priorities equal: the plain waiting order.
    got = [d.id for d in ledger.due(NOW + 10, priority={"high": 0, "low": 0})]
    assert got == [low1.id, none1.id, high1.id, low2.id, high2.id]


def test_due_and_next_due_at_leave_out_skipped_rules(ledger: Ledger) -> None:
    """Drops of rules outside their schedule are neither due nor counted for the next wake."""
    closed = ready(ledger, "c1", rule="closed", now=NOW)
    opened = ready(ledger, "o1", rule="open", now=NOW + 5)
    assert [d.id for d in ledger.due(NOW + 10, skip_rules={"closed"})] == [opened.id]
    assert ledger.next_due_at(skip_rules={"closed"}) == NOW + 5
    assert ledger.next_due_at(skip_rules={"closed", "open"}) is None
    assert ledger.due(NOW + 10, skip_rules=["closed", "open"]) == []
    assert [d.id for d in ledger.due(NOW + 10)] == [closed.id, opened.id]


def test_next_due_at_is_none_when_nothing_is_ready(ledger: Ledger) -> None:
    """next_due_at() is None with no ready rows and the arrival time for a new drop."""
    assert ledger.next_due_at() is None
    ready(ledger, now=NOW + 3)
    assert ledger.next_due_at() == NOW + 3


def test_counts_cover_every_state(ledger: Ledger) -> None:
    """counts() has every state as a key and counts archived rows too (history)."""
    assert ledger.counts() == {s.value: 0 for s in DropState}
    for i, state in enumerate(DropState):
        make_in_state(ledger, state, f"x{i}")
    make_in_state(ledger, DropState.READY, "y")
    archived = make_in_state(ledger, DropState.COMPLETE, "z")
    ledger.archive(archived.id)
    expected = {s.value: 1 for s in DropState}
    expected["ready"] = 2
    expected["complete"] = 2
    assert ledger.counts() == expected


def test_in_state_filters_by_state(ledger: Ledger) -> None:
    """in_state filters by state (live rows unless asked), oldest first."""
    r = make_in_state(ledger, DropState.READY, "r1")
    s = make_in_state(ledger, DropState.SUBMITTED, "s1")
    c = make_in_state(ledger, DropState.COMPLETE, "c1")
    assert ledger.in_state(DropState.SUBMITTED) == [s]
    assert [d.id for d in ledger.in_state(DropState.READY, DropState.COMPLETE)] == [r.id, c.id]
    assert ledger.in_state() == []
    ledger.archive(c.id)
    assert ledger.in_state(DropState.COMPLETE) == []
    assert [d.id for d in ledger.in_state(DropState.COMPLETE, include_archived=True)] == [c.id]


def test_find_active_many_reads_the_live_rows_of_many_drops_at_once(ledger: Ledger) -> None:
    """Intake reads every pending drop's live row in one go: an archived row, another rule's
    drop of the same name and a drop without a row are not returned; lists longer than one
    query's parameters are read in parts."""
    a = ready(ledger, "a")
    old_b = ready(ledger, "b")
    ledger.archive(old_b.id)
    other = ready(ledger, "a", rule="other")
    with ledger.batch():
        many = [ready(ledger, f"m{i:04d}") for i in range(1200)]
    keys = [("r", "a"), ("r", "b"), ("r", "nothing"), ("other", "a")]
    keys += [("r", d.drop) for d in many]
    found = ledger.find_active_many(keys)
    assert found[("r", "a")] == a
    assert found[("other", "a")] == other
    assert ("r", "b") not in found and ("r", "nothing") not in found
    assert len(found) == 2 + 1200
    assert found[("r", "m1199")] == many[-1]
