"""Ledger: state transitions, due queue, migrations, refusal of bad files, concurrent access.

Every test uses a real SQLite file in tmp_path.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from watcher.errors import LedgerError
from watcher.ledger import SCHEMA_VERSION, Ledger, ledger_path
from watcher.model import TERMINAL, Drop, DropState, SubmittedRun

NOW = 1_700_000_000.0


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as led:
        yield led


def ready(led: Ledger, drop: str = "a", *, rule: str = "r", now: float = NOW) -> Drop:
    return led.record_ready(
        rule=rule,
        drop=drop,
        fingerprint="fp1",
        input_dir=f"in/{drop}",
        deployment_id="dep",
        now=now,
    )


def insert_detected(led: Ledger, drop: str = "a", *, fingerprint: str = "fp1") -> Drop:
    """A live `detected` row, written with plain SQL: no ledger method records one."""
    drop_id = f"d-{len(led.all_drops()):012x}"
    conn = sqlite3.connect(led.path)
    try:
        with conn:
            conn.execute(
                "INSERT INTO drops (id, rule, drop_path, fingerprint, state, created_at, "
                "updated_at) VALUES (?, 'r', ?, ?, 'detected', ?, ?)",
                (drop_id, drop, fingerprint, NOW, NOW),
            )
    finally:
        conn.close()
    got = led.get(drop_id)
    assert got is not None
    return got


def make_in_state(led: Ledger, state: DropState, drop: str = "a") -> Drop:
    """Walk a fresh drop through legal transitions until it is in `state`."""
    if state is DropState.DETECTED:
        return insert_detected(led, drop)
    d = ready(led, drop)
    if state is DropState.READY:
        return d
    d = led.begin_submit(d.id, now=NOW + 1)
    if state is DropState.SUBMITTING:
        return d
    if state is DropState.REJECTED:
        return led.mark_rejected(d.id, error="400 bad", response='{"message":"bad"}', now=NOW + 2)
    if state is DropState.FAILED:
        return led.mark_failed(d.id, error="gave up", now=NOW + 2)
    d = led.mark_submitted(
        d.id, run_id=f"run-{drop}", run_status="RUNNING", response="{}", now=NOW + 2
    )
    if state is DropState.SUBMITTED:
        return d
    status = {
        DropState.COMPLETE: "COMPLETE",
        DropState.RUN_FAILED: "FAILED",
        DropState.CANCELLED: "CANCELLED",
        DropState.NEEDS_REVIEW: "STOPPED_AT_CHECKPOINT",
    }[state]
    return led.set_run_status(d.id, run_status=status, response="{}", now=NOW + 3)


# --- basics ------------------------------------------------------------------------------


def test_new_ledger_is_wal_full_sync_at_latest_schema(tmp_path: Path) -> None:
    """A new file is created in WAL mode with synchronous=FULL at the latest schema version."""
    path = tmp_path / "new.sqlite3"
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        conn = led._connection()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_in_state_dir_creates_the_directory(tmp_path: Path) -> None:
    """in_state_dir makes state_dir (and parents) and opens state_dir/ledger.sqlite3."""
    state_dir = tmp_path / "a" / "b"
    with Ledger.in_state_dir(state_dir) as led:
        assert led.path == ledger_path(state_dir) == state_dir / "ledger.sqlite3"
    assert (state_dir / "ledger.sqlite3").is_file()


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


def test_unknown_drop_id_is_a_bug(ledger: Ledger) -> None:
    """Transitions on an id that does not exist raise RuntimeError."""
    with pytest.raises(RuntimeError, match="no drop"):
        ledger.begin_submit("d-000000000000", now=NOW)
    with pytest.raises(RuntimeError, match="no drop"):
        ledger.archive("d-000000000000")
    assert ledger.get("d-000000000000") is None


def test_closed_ledger_is_a_bug(tmp_path: Path) -> None:
    """Using a closed ledger raises RuntimeError; close is idempotent."""
    led = Ledger(tmp_path / "l.sqlite3")
    led.close()
    led.close()
    with pytest.raises(RuntimeError, match="closed"):
        led.counts()


# --- the full transition matrix ----------------------------------------------------------

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


# --- due queue, counts, queries ----------------------------------------------------------


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


# --- rearm (operator) --------------------------------------------------------------------


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


# --- batches -----------------------------------------------------------------------------


def test_batched_writes_commit_together(ledger: Ledger) -> None:
    """begin_submit_many / mark_submitted_many apply every item in one transaction."""
    drops = [ready(ledger, f"b{i}") for i in range(5)]
    started = ledger.begin_submit_many([d.id for d in drops], now=NOW + 1)
    assert [d.state for d in started] == [DropState.SUBMITTING] * 5
    done = ledger.mark_submitted_many(
        [
            SubmittedRun(drop_id=d.id, run_id=f"run{i}", run_status="RUNNING", response="{}")
            for i, d in enumerate(started)
        ],
        now=NOW + 2,
    )
    assert [d.run_id for d in done] == [f"run{i}" for i in range(5)]
    assert ledger.counts()["submitted"] == 5


def test_batch_is_all_or_nothing(ledger: Ledger) -> None:
    """One impossible transition in a batch rolls back the whole batch."""
    a, b = ready(ledger, "a"), ready(ledger, "b")
    bad = make_in_state(ledger, DropState.SUBMITTED, "c")
    before = ledger.all_drops()
    with pytest.raises(RuntimeError):
        ledger.begin_submit_many([a.id, b.id, bad.id], now=NOW + 1)
    assert ledger.all_drops() == before
    with pytest.raises(ValueError, match="boom"), ledger.batch():
        ready(ledger, "new")
        with ledger.batch():  # nested batches join the outer one
            ledger.begin_submit(a.id, now=NOW)
        raise ValueError("boom")
    assert ledger.all_drops() == before


# --- files: migration, refusal, read-only ------------------------------------------------

V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL);
CREATE TABLE drops (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, drop_path TEXT NOT NULL,
    fingerprint TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL, attempt_id TEXT, intent_at REAL, run_id TEXT, run_status TEXT,
    last_error TEXT, last_response TEXT, input_dir TEXT, deployment_id TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, submitted_at REAL, finished_at REAL,
    post_action_done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX drops_rule_drop ON drops (rule, drop_path);
CREATE INDEX drops_due ON drops (state, next_attempt_at);
INSERT INTO schema_version VALUES (1, 0);
"""


def write_v1(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(V1_SCHEMA)
        rows = [
            ("d-000000000001", "r", "a", "fp1", "complete", 1, "run-1", 10.0),
            ("d-000000000002", "r", "a", "fp2", "submitted", 1, "run-2", 20.0),
            ("d-000000000003", "r", "b", "fp3", "ready", 0, None, 30.0),
        ]
        conn.executemany(
            "INSERT INTO drops (id, rule, drop_path, fingerprint, state, attempts, run_id, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*r, r[-1]) for r in rows],
        )
        conn.commit()
    finally:
        conn.close()


def index_names(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
        return [name for (name,) in rows if not name.startswith("sqlite_autoindex")]
    finally:
        conn.close()


def test_opening_a_v1_ledger_migrates_it(tmp_path: Path) -> None:
    """A v1 file is migrated in place: rows kept, older duplicates archived, new columns usable."""
    path = tmp_path / "old.sqlite3"
    write_v1(path)
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        drops = {d.id: d for d in led.all_drops()}
        assert set(drops) == {"d-000000000001", "d-000000000002", "d-000000000003"}
        assert drops["d-000000000001"].archived  # superseded by the newer row for r/a
        assert not drops["d-000000000002"].archived
        assert led.find_active("r", "a") == drops["d-000000000002"]
        assert drops["d-000000000002"].run_id == "run-2"
        assert [d.id for d in led.due(100.0)] == ["d-000000000003"]
        led.begin_submit("d-000000000003", now=101.0)
    # The same indexes as a new file (the run_id one included).
    with Ledger(tmp_path / "new.sqlite3"):
        pass
    assert index_names(path) == index_names(tmp_path / "new.sqlite3")
    # Reopening a migrated file applies nothing twice.
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        assert len(led.all_drops()) == 3


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A ledger written by a newer aihub-watcher raises LedgerError naming both versions."""
    path = tmp_path / "future.sqlite3"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 7,))
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match=rf"schema version {SCHEMA_VERSION + 7}, newer"):
        Ledger(path)
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open_readonly(path)


def test_a_corrupt_file_is_a_ledger_error_naming_the_path(tmp_path: Path) -> None:
    """A file that is not SQLite raises LedgerError with its path, and is left untouched."""
    path = tmp_path / "garbage.sqlite3"
    content = b"this is not a database, just some bytes\n" * 200
    path.write_bytes(content)
    with pytest.raises(LedgerError, match=re.escape(str(path))):
        Ledger(path)
    with pytest.raises(LedgerError, match=re.escape(str(path))):
        Ledger.open_readonly(path)
    assert path.read_bytes() == content


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    """An SQLite file with foreign tables is not mistaken for an empty ledger."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="not an aihub-watcher ledger"):
        Ledger(path)


def test_unopenable_path_is_a_ledger_error(tmp_path: Path) -> None:
    """A path whose directory does not exist raises LedgerError naming it."""
    path = tmp_path / "missing-dir" / "l.sqlite3"
    with pytest.raises(LedgerError, match=re.escape(str(path))):
        Ledger(path)


def test_open_readonly_never_creates_a_ledger(tmp_path: Path) -> None:
    """open_readonly of a missing file raises "has the daemon run" and creates nothing."""
    path = tmp_path / "ledger.sqlite3"
    with pytest.raises(
        LedgerError, match=r"no ledger at .*: has the daemon run with this state_dir\?"
    ):
        Ledger.open_readonly(path)
    assert list(tmp_path.iterdir()) == []


def test_open_readonly_reads_and_refuses_writes(tmp_path: Path) -> None:
    """A read-only ledger sees the data and treats any write as a bug."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as led:
        d = ready(led)
    with Ledger.open_readonly(path) as ro:
        assert ro.readonly
        assert ro.get(d.id) == d
        assert ro.counts()["ready"] == 1
        with pytest.raises(RuntimeError, match="read-only"):
            ro.begin_submit(d.id, now=NOW)


def test_open_readonly_refuses_an_unmigrated_ledger(tmp_path: Path) -> None:
    """status on a v1 file asks for the daemon to migrate it first instead of migrating."""
    path = tmp_path / "old.sqlite3"
    write_v1(path)
    with pytest.raises(LedgerError, match="start the daemon once to migrate"):
        Ledger.open_readonly(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 1
    conn.close()


# --- concurrency -------------------------------------------------------------------------


def test_a_reader_is_not_blocked_by_an_open_write(tmp_path: Path) -> None:
    """While the daemon is inside a write transaction, a status reader sees the last commit."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as daemon:
        d = ready(daemon)
        with Ledger.open_readonly(path) as status:
            with daemon.batch():
                daemon.begin_submit(d.id, now=NOW + 1)
                seen = status.get(d.id)
                assert seen is not None and seen.state is DropState.READY
            seen = status.get(d.id)
            assert seen is not None and seen.state is DropState.SUBMITTING


def test_cli_rearm_waits_for_the_daemon_and_loses_nothing(tmp_path: Path) -> None:
    """A second writer (retry CLI) waits out the daemon's transaction; both writes survive."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as daemon:
        failed = make_in_state(daemon, DropState.FAILED, "f")
        other = ready(daemon, "o")
        done = threading.Event()
        errors: list[BaseException] = []

        def cli() -> None:
            try:
                with Ledger(path) as led:
                    led.rearm(failed.id, now=NOW + 100)
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        with daemon.batch():
            daemon.begin_submit(other.id, now=NOW + 1)
            thread = threading.Thread(target=cli)
            thread.start()
            # The CLI cannot commit while the daemon holds the write lock.
            assert not done.wait(0.3)
        wait_until(done.is_set, timeout=5, what="the CLI rearm to finish")
        thread.join()
        assert errors == []
        got_failed, got_other = daemon.get(failed.id), daemon.get(other.id)
        assert got_failed is not None and got_failed.state is DropState.READY
        assert got_other is not None and got_other.state is DropState.SUBMITTING


def test_each_write_is_visible_to_another_connection_on_return(tmp_path: Path) -> None:
    """Every write method commits before it returns (no open transaction left behind)."""
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as led:
        d = ready(led)
        led.begin_submit(d.id, now=NOW)
        assert not led._connection().in_transaction
        other = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert other.execute("SELECT state FROM drops").fetchall() == [("submitting",)]
        finally:
            other.close()
