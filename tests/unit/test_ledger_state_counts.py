"""ledger.state_counts: the one read a metrics scrape makes (per rule and state), on both
backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ledger_stores import Store
from tests.unit.ledger_helpers import NOW, make_in_state, ready
from watcher.ledger import Ledger, state_counts
from watcher.model import DropState, StateCount


@pytest.fixture
def ledger(ledger_store: Store) -> Iterator[Ledger]:
    with ledger_store.open() as led:
        yield led


def test_state_counts_group_by_rule_and_state(ledger: Ledger) -> None:
    """Counts per (rule, state) agree with counts(); due and oldest look at live ready rows."""
    ready(ledger, "a", rule="r1", now=NOW)
    ready(ledger, "b", rule="r1", now=NOW + 10)
    waiting = ready(ledger, "c", rule="r1", now=NOW - 30)
    ledger.schedule_retry(
        ledger.begin_submit(waiting.id, now=NOW).id,
        next_attempt_at=NOW + 500,
        error="e",
        now=NOW,
    )
    ready(ledger, "d", rule="r2", now=NOW + 5)
    done = make_in_state(ledger, DropState.COMPLETE, "e")
    ledger.archive(done.id)
    got = {(c.rule, c.state): c for c in state_counts(ledger, NOW + 100)}
    assert got[("r1", "ready")] == StateCount(
        rule="r1", state="ready", drops=3, due=2, oldest_at=NOW - 30
    )
    assert got[("r2", "ready")] == StateCount(
        rule="r2", state="ready", drops=1, due=1, oldest_at=NOW + 5
    )
    # Archived rows count (as in `status`), but have no live age.
    assert got[("r", "complete")] == StateCount(
        rule="r", state="complete", drops=1, due=0, oldest_at=None
    )
    totals: dict[str, int] = {}
    for c in got.values():
        totals[c.state] = totals.get(c.state, 0) + c.drops
    assert {k: v for k, v in ledger.counts().items() if v} == totals


def test_state_counts_is_empty_for_an_empty_ledger(ledger: Ledger) -> None:
    """No rows, no groups (the scrape still shows zeros for the configured rules)."""
    assert state_counts(ledger, NOW) == []
