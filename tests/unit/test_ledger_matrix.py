"""The ledger's transition matrix: every operation from every state, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.ledger_helpers import NOW, make_in_state, ready
from watcher.errors import LedgerError
from watcher.ledger import Ledger
from watcher.model import TERMINAL, DropState


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as led:
        yield led


ALL_STATES = tuple(DropState)
GIVE_UP_FROM = {DropState.READY, DropState.SUBMITTING}
OPS: dict[str, tuple[Callable[[Ledger, str], Any], set[DropState]]] = {
    "begin_submit": (lambda led, i: led.begin_submit(i, now=NOW + 50), {DropState.READY}),
    "mark_submitted": (
        lambda led, i: led.mark_submitted(
            i, run_id="x", run_status="RUNNING", response="{}", now=NOW + 50
        ),
        {DropState.SUBMITTING},
    ),
    "schedule_retry": (
        lambda led, i: led.schedule_retry(i, next_attempt_at=NOW + 60, error="e", now=NOW + 50),
        {DropState.SUBMITTING},
    ),
    "release": (lambda led, i: led.release(i, now=NOW + 50), {DropState.SUBMITTING}),
    "mark_rejected": (
        lambda led, i: led.mark_rejected(i, error="e", response=None, now=NOW + 50),
        GIVE_UP_FROM,
    ),
    "mark_failed": (lambda led, i: led.mark_failed(i, error="e", now=NOW + 50), GIVE_UP_FROM),
    "set_run_status": (
        lambda led, i: led.set_run_status(i, run_status="COMPLETE", response="{}", now=NOW + 50),
        {DropState.SUBMITTED, DropState.NEEDS_REVIEW},
    ),
    "update_fingerprint": (
        lambda led, i: led.update_fingerprint(i, "fp9", now=NOW + 50),
        {DropState.DETECTED, DropState.READY},
    ),
    "resubmit": (lambda led, i: led.resubmit(i, "fp9", now=NOW + 50), set(TERMINAL)),
    "mark_post_action_done": (lambda led, i: led.mark_post_action_done(i), set(TERMINAL)),
    "archive": (
        lambda led, i: led.archive(i),
        {DropState.DETECTED, DropState.READY, *TERMINAL},
    ),
    "rearm": (lambda led, i: led.rearm(i, now=NOW + 50), {DropState.FAILED, DropState.REJECTED}),
}


@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
@pytest.mark.parametrize("op", sorted(OPS))
def test_transition_matrix(ledger: Ledger, op: str, state: DropState) -> None:
    """Each transition works from its allowed states; from others it raises, changing nothing."""
    call, allowed = OPS[op]
    d = make_in_state(ledger, state)
    if state in allowed:
        call(ledger, d.id)
        return
    before = ledger.all_drops()
    # rearm is operator input (`aihub-watcher retry`), so it is a LedgerError, not a bug.
    expected = LedgerError if op == "rearm" else RuntimeError
    with pytest.raises(expected, match=state.value):
        call(ledger, d.id)
    assert ledger.all_drops() == before


@pytest.mark.parametrize("op", ["begin_submit", "update_fingerprint", "mark_failed"])
def test_archived_rows_take_no_transitions(ledger: Ledger, op: str) -> None:
    """An archived ready row is out of play: transitions on it raise RuntimeError."""
    d = ready(ledger)
    ledger.archive(d.id)
    with pytest.raises(RuntimeError, match="archived"):
        OPS[op][0](ledger, d.id)
