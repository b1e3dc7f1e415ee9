"""Ledger transitions: what each state-changing operation writes, and what it refuses.

Every test runs on both backends: a real SQLite file, and a PostgreSQL schema of its own. The
full state x operation table is in test_ledger_matrix.py.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest

from tests.ledger_stores import Store
from tests.unit.ledger_helpers import NOW, insert_detected, make_in_state, ready
from watcher.errors import LedgerError
from watcher.ledger import Ledger
from watcher.model import TERMINAL, DropState


@pytest.fixture
def ledger(ledger_store: Store) -> Iterator[Ledger]:
    with ledger_store.open() as led:
        yield led


# --- intake -------------------------------------------------------------------------------


def test_record_ready_inserts_a_ready_row_with_a_short_id(ledger: Ledger) -> None:
    """record_ready inserts a live ready row with a "d-" + 12 hex id and all fields set."""
    d = ready(ledger)
    assert re.fullmatch(r"d-[0-9a-f]{12}", d.id)
    assert d.state is DropState.READY
    assert (d.rule, d.drop, d.fingerprint, d.input_dir, d.deployment_id) == (
        "r",
        "a",
        "fp1",
        "in/a",
        "dep",
    )
    assert d.attempts == 0 and d.next_attempt_at is None and d.attempt_id is None
    assert d.created_at == d.updated_at == NOW
    assert not d.post_action_done and not d.archived and not d.terminal
    assert ledger.get(d.id) == d
    assert ledger.find_active("r", "a") == d
    assert ledger.find_active("r", "b") is None
    assert ledger.find_active("other", "a") is None


def test_drop_is_frozen(ledger: Ledger) -> None:
    """Drop rows are immutable snapshots."""
    d = ready(ledger)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.state = DropState.FAILED  # type: ignore[misc]


def test_record_ready_refuses_a_second_live_row(ledger: Ledger) -> None:
    """A second record_ready for a drop with a live row is a bug: RuntimeError, nothing added."""
    d = ready(ledger)
    with pytest.raises(RuntimeError, match="already has live row"):
        ready(ledger)
    assert [x.id for x in ledger.all_drops()] == [d.id]


def test_record_ready_moves_detected_to_ready(ledger: Ledger) -> None:
    """record_ready on a detected drop moves that same row to ready with the new fields."""
    det = insert_detected(ledger, "a", fingerprint="fp0")
    assert det.state is DropState.DETECTED
    d = ledger.record_ready(
        rule="r", drop="a", fingerprint="fp1", input_dir="in/a", deployment_id="dep", now=NOW + 5
    )
    assert d.id == det.id
    assert (d.state, d.fingerprint, d.input_dir, d.updated_at) == (
        DropState.READY,
        "fp1",
        "in/a",
        NOW + 5,
    )


def test_update_fingerprint_before_submit(ledger: Ledger) -> None:
    """update_fingerprint changes the fingerprint of a ready drop and keeps its id."""
    d = ready(ledger)
    u = ledger.update_fingerprint(d.id, "fp2", now=NOW + 1)
    assert (u.id, u.state, u.fingerprint, u.updated_at) == (d.id, DropState.READY, "fp2", NOW + 1)


def test_resubmit_archives_and_returns_a_new_ready_row(ledger: Ledger) -> None:
    """resubmit archives the terminal row and returns a new live ready row for the same drop."""
    old = make_in_state(ledger, DropState.COMPLETE)
    new = ledger.resubmit(old.id, "fp2", now=NOW + 10)
    assert new.id != old.id
    assert (new.state, new.rule, new.drop, new.fingerprint, new.input_dir, new.deployment_id) == (
        DropState.READY,
        "r",
        "a",
        "fp2",
        "in/a",
        "dep",
    )
    archived = ledger.get(old.id)
    assert archived is not None and archived.archived and archived.state is DropState.COMPLETE
    assert ledger.find_active("r", "a") == new
    assert [d.id for d in ledger.all_drops(include_archived=False)] == [new.id]
    assert ledger.active_drops() == [new]
    assert [d.id for d in ledger.all_drops()] == [old.id, new.id]


def test_archive_lets_a_same_named_drop_start_fresh(ledger: Ledger) -> None:
    """After archive (idempotent) find_active is None and record_ready makes a new row."""
    old = make_in_state(ledger, DropState.COMPLETE)
    ledger.archive(old.id)
    ledger.archive(old.id)
    assert ledger.find_active("r", "a") is None
    new = ready(ledger)
    assert new.id != old.id
    assert ledger.counts()["complete"] == 1  # history: the old drop did complete
    assert ledger.counts()["ready"] == 1


# --- submission ---------------------------------------------------------------------------


def test_begin_submit_records_the_intent(ledger: Ledger) -> None:
    """begin_submit: ready -> submitting, fresh uuid4-hex attempt_id, intent_at, attempts+1."""
    d = ready(ledger)
    s1 = ledger.begin_submit(d.id, now=NOW + 1)
    assert s1.state is DropState.SUBMITTING
    assert re.fullmatch(r"[0-9a-f]{32}", s1.attempt_id or "")
    assert (s1.intent_at, s1.attempts, s1.updated_at) == (NOW + 1, 1, NOW + 1)
    r = ledger.schedule_retry(s1.id, next_attempt_at=NOW + 30, error="503", now=NOW + 2)
    s2 = ledger.begin_submit(r.id, now=NOW + 31)
    assert s2.attempts == 2
    assert s2.attempt_id != s1.attempt_id
    assert s2.next_attempt_at is None


def test_begin_submit_can_refresh_input_dir_and_deployment(ledger: Ledger) -> None:
    """begin_submit stores a new input_dir/deployment_id when given (rule changed on reload)."""
    d = ready(ledger)
    s = ledger.begin_submit(d.id, now=NOW + 1, input_dir="new/a", deployment_id="dep2")
    assert (s.input_dir, s.deployment_id) == ("new/a", "dep2")
    r = ledger.release(s.id, now=NOW + 2)
    assert ledger.begin_submit(r.id, now=NOW + 3).input_dir == "new/a"


def test_mark_submitted_stores_the_run(ledger: Ledger) -> None:
    """mark_submitted: submitting -> submitted with run id, status, response, submitted_at."""
    d = make_in_state(ledger, DropState.SUBMITTING)
    s = ledger.mark_submitted(
        d.id, run_id="run-1", run_status="RUNNING", response='{"id":"run-1"}', now=NOW + 9
    )
    assert (s.state, s.run_id, s.run_status, s.last_response, s.submitted_at) == (
        DropState.SUBMITTED,
        "run-1",
        "RUNNING",
        '{"id":"run-1"}',
        NOW + 9,
    )
    assert s.attempt_id == d.attempt_id
    assert ledger.get(d.id) == s


def test_schedule_retry_sets_the_next_attempt(ledger: Ledger) -> None:
    """schedule_retry: submitting -> ready with next_attempt_at and last_error; attempts kept."""
    d = make_in_state(ledger, DropState.SUBMITTING)
    r = ledger.schedule_retry(
        d.id, next_attempt_at=NOW + 60, error="HubServerError(503)", now=NOW + 2
    )
    assert (r.state, r.next_attempt_at, r.last_error, r.attempts) == (
        DropState.READY,
        NOW + 60,
        "HubServerError(503)",
        1,
    )


def test_release_does_not_count_the_attempt(ledger: Ledger) -> None:
    """release: submitting -> ready, attempts back down, intent cleared, due at once."""
    d = make_in_state(ledger, DropState.SUBMITTING)
    r = ledger.release(d.id, now=NOW + 2)
    assert (r.state, r.attempts, r.attempt_id, r.intent_at, r.next_attempt_at) == (
        DropState.READY,
        0,
        None,
        None,
        None,
    )
    assert ledger.due(NOW + 2) == [r]


def test_mark_rejected_keeps_error_and_response(ledger: Ledger) -> None:
    """mark_rejected stores error, response (the old one when None) and finished_at."""
    d = make_in_state(ledger, DropState.SUBMITTING)
    r = ledger.mark_rejected(d.id, error="400: bad input_dir", response='{"m":1}', now=NOW + 3)
    assert (r.state, r.last_error, r.last_response, r.finished_at) == (
        DropState.REJECTED,
        "400: bad input_dir",
        '{"m":1}',
        NOW + 3,
    )
    r2 = ledger.mark_rejected(ready(ledger, "b").id, error="rule removed", response=None, now=NOW)
    assert r2.state is DropState.REJECTED and r2.last_response is None


def test_mark_failed_is_terminal(ledger: Ledger) -> None:
    """mark_failed: retries exhausted -> failed (terminal), with the last error."""
    d = make_in_state(ledger, DropState.SUBMITTING)
    f = ledger.mark_failed(d.id, error="10 attempts failed", now=NOW + 4)
    assert (f.state, f.last_error, f.finished_at, f.terminal) == (
        DropState.FAILED,
        "10 attempts failed",
        NOW + 4,
        True,
    )


def test_unknown_drop_id_is_a_bug(ledger: Ledger) -> None:
    """Transitions on an id that does not exist raise RuntimeError."""
    with pytest.raises(RuntimeError, match="no drop"):
        ledger.begin_submit("d-000000000000", now=NOW)
    with pytest.raises(RuntimeError, match="no drop"):
        ledger.archive("d-000000000000")
    assert ledger.get("d-000000000000") is None


# --- tracking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_status", "state"),
    [
        ("COMPLETE", DropState.COMPLETE),
        ("FAILED", DropState.RUN_FAILED),
        ("CANCELLED", DropState.CANCELLED),
        ("STOPPED_AT_CHECKPOINT", DropState.NEEDS_REVIEW),
        ("RUNNING", DropState.SUBMITTED),
        ("PAUSED", DropState.SUBMITTED),
        ("SOMETHING_NEW", DropState.SUBMITTED),
    ],
)
def test_set_run_status_maps_hub_statuses(
    ledger: Ledger, run_status: str, state: DropState
) -> None:
    """set_run_status maps the hub's run status to a drop state; unknown ones stay submitted."""
    d = make_in_state(ledger, DropState.SUBMITTED)
    s = ledger.set_run_status(d.id, run_status=run_status, response='{"s":1}', now=NOW + 5)
    assert (s.state, s.run_status, s.last_response) == (state, run_status, '{"s":1}')
    assert s.finished_at == (NOW + 5 if state in TERMINAL else None)


def test_needs_review_can_resume_to_complete(ledger: Ledger) -> None:
    """A run stopped at a checkpoint that a human resumes can still reach complete."""
    d = make_in_state(ledger, DropState.NEEDS_REVIEW)
    s = ledger.set_run_status(d.id, run_status="RUNNING", response="{}", now=NOW + 6)
    assert s.state is DropState.SUBMITTED and s.finished_at is None
    c = ledger.set_run_status(d.id, run_status="COMPLETE", response="{}", now=NOW + 7)
    assert c.state is DropState.COMPLETE and c.finished_at == NOW + 7


def test_post_action_done_is_recorded(ledger: Ledger) -> None:
    """mark_post_action_done sets the flag on a terminal drop (idempotently)."""
    d = make_in_state(ledger, DropState.COMPLETE)
    ledger.mark_post_action_done(d.id)
    ledger.mark_post_action_done(d.id)
    got = ledger.get(d.id)
    assert got is not None and got.post_action_done


# --- rearm (operator) ---------------------------------------------------------------------


@pytest.mark.parametrize("state", [DropState.FAILED, DropState.REJECTED])
def test_rearm_resets_a_failed_or_rejected_drop(ledger: Ledger, state: DropState) -> None:
    """rearm: failed/rejected -> ready, attempts 0, due now, last error kept for the record."""
    d = make_in_state(ledger, state)
    r = ledger.rearm(d.id, now=NOW + 100)
    assert (r.state, r.attempts, r.next_attempt_at, r.attempt_id, r.finished_at) == (
        DropState.READY,
        0,
        None,
        None,
        None,
    )
    assert r.last_error == d.last_error
    assert ledger.due(NOW + 100) == [r]


def test_rearm_refuses_unknown_and_archived_drops(ledger: Ledger) -> None:
    """rearm of an unknown or archived id is a LedgerError with a clear message."""
    with pytest.raises(LedgerError, match="no drop 'd-123'"):
        ledger.rearm("d-123", now=NOW)
    d = make_in_state(ledger, DropState.FAILED)
    ledger.archive(d.id)
    with pytest.raises(LedgerError, match="archived"):
        ledger.rearm(d.id, now=NOW)
