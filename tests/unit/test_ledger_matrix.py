"""The ledger's transition matrix: every operation from every state, on a real SQLite file.

From an allowed state the row must end up exactly as the operation promises (every field);
from any other state the operation raises and leaves the row unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.ledger_stores import Store
from tests.unit.ledger_helpers import NOW, make_in_state
from watcher.errors import LedgerError
from watcher.ledger import Ledger
from watcher.ledger.transitions import ALLOWED_FROM
from watcher.model import TERMINAL, Drop, DropState

AT = NOW + 50  # the `now` of every operation below


@pytest.fixture
def ledger(ledger_store: Store) -> Iterator[Ledger]:
    with ledger_store.open() as led:
        yield led


def new_attempt(before: Drop, after: Drop) -> dict[str, Any]:
    assert re.fullmatch(r"[0-9a-f]{32}", after.attempt_id or "")
    assert after.attempt_id != before.attempt_id
    return {
        "state": DropState.SUBMITTING,
        "attempt_id": after.attempt_id,
        "intent_at": AT,
        "attempts": before.attempts + 1,
        "next_attempt_at": None,
        "updated_at": AT,
    }


@dataclasses.dataclass(frozen=True)
class Op:
    call: Callable[[Ledger, str], Any]
    allowed: frozenset[DropState]
    # The fields the operation changes, given the row before and after it.
    changes: Callable[[Drop, Drop], dict[str, Any]]


BEFORE_SUBMIT = frozenset({DropState.WAITING_REMOTE, DropState.UPLOADING, DropState.READY})
GIVE_UP_FROM = BEFORE_SUBMIT | {DropState.SUBMITTING}
OPS: dict[str, Op] = {
    "begin_submit": Op(
        lambda led, i: led.begin_submit(i, now=AT), frozenset({DropState.READY}), new_attempt
    ),
    "mark_submitted": Op(
        lambda led, i: led.mark_submitted(
            i, run_id="x", run_status="RUNNING", response="{}", now=AT
        ),
        frozenset({DropState.SUBMITTING}),
        lambda _b, _a: {
            "state": DropState.SUBMITTED,
            "run_id": "x",
            "run_status": "RUNNING",
            "last_response": "{}",
            "submitted_at": AT,
            "updated_at": AT,
        },
    ),
    "schedule_retry": Op(
        lambda led, i: led.schedule_retry(i, next_attempt_at=NOW + 60, error="e", now=AT),
        frozenset({DropState.SUBMITTING}),
        lambda _b, _a: {
            "state": DropState.READY,
            "next_attempt_at": NOW + 60,
            "last_error": "e",
            "updated_at": AT,
        },
    ),
    "release": Op(
        lambda led, i: led.release(i, now=AT),
        frozenset({DropState.SUBMITTING}),
        lambda b, _a: {
            "state": DropState.READY,
            "attempts": b.attempts - 1,
            "attempt_id": None,
            "intent_at": None,
            "next_attempt_at": None,
            "updated_at": AT,
        },
    ),
    "mark_rejected": Op(
        lambda led, i: led.mark_rejected(i, error="e", response=None, now=AT),
        GIVE_UP_FROM,
        lambda _b, _a: {
            "state": DropState.REJECTED,
            "last_error": "e",
            "finished_at": AT,
            "next_attempt_at": None,
            "updated_at": AT,
        },
    ),
    "mark_failed": Op(
        lambda led, i: led.mark_failed(i, error="e", now=AT),
        GIVE_UP_FROM,
        lambda _b, _a: {
            "state": DropState.FAILED,
            "last_error": "e",
            "finished_at": AT,
            "next_attempt_at": None,
            "updated_at": AT,
        },
    ),
    "set_run_status": Op(
        lambda led, i: led.set_run_status(i, run_status="COMPLETE", response="{}", now=AT),
        frozenset({DropState.SUBMITTED, DropState.NEEDS_REVIEW}),
        lambda _b, _a: {
            "state": DropState.COMPLETE,
            "run_status": "COMPLETE",
            "last_response": "{}",
            "finished_at": AT,
            "updated_at": AT,
        },
    ),
    "update_fingerprint": Op(
        lambda led, i: led.update_fingerprint(i, "fp9", now=AT),
        frozenset({DropState.DETECTED}) | BEFORE_SUBMIT,
        lambda _b, _a: {"fingerprint": "fp9", "updated_at": AT},
    ),
    "resubmit": Op(
        lambda led, i: led.resubmit(i, "fp9", now=AT),
        TERMINAL,
        lambda _b, _a: {"archived": True, "updated_at": AT},
    ),
    "mark_post_action_done": Op(
        lambda led, i: led.mark_post_action_done(i, now=AT),
        TERMINAL,
        lambda _b, _a: {"post_action_done": True, "updated_at": AT},
    ),
    "archive": Op(
        lambda led, i: led.archive(i, now=AT),
        frozenset({DropState.DETECTED}) | BEFORE_SUBMIT | TERMINAL,
        lambda _b, _a: {"archived": True, "updated_at": AT},
    ),
    "remote_checked": Op(
        lambda led, i: led.stages.remote_checked(i, missing=None, now=AT),
        frozenset({DropState.WAITING_REMOTE}),
        lambda _b, _a: {"state": DropState.READY, "last_error": None, "updated_at": AT},
    ),
    "upload_progress": Op(
        lambda led, i: led.stages.upload_note(i, error="slow", now=AT),
        frozenset({DropState.UPLOADING}),
        lambda _b, _a: {"last_error": "slow", "updated_at": AT},
    ),
    "results": Op(
        lambda led, i: led.stages.results_pending(i, now=AT),
        frozenset({DropState.COMPLETE}),
        lambda _b, _a: {"results_state": "pending", "updated_at": AT},
    ),
    "rearm": Op(
        lambda led, i: led.rearm(i, now=AT),
        frozenset({DropState.FAILED, DropState.REJECTED}),
        lambda _b, _a: {
            "state": DropState.READY,
            "attempts": 0,
            "next_attempt_at": None,
            "attempt_id": None,
            "intent_at": None,
            "finished_at": None,
            "updated_at": AT,
        },
    ),
}


def test_the_matrix_covers_every_transition() -> None:
    """A new ledger operation cannot slip past the matrix below."""
    assert set(OPS) == set(ALLOWED_FROM)


@pytest.mark.parametrize("state", tuple(DropState), ids=lambda s: s.value)
@pytest.mark.parametrize("op", sorted(OPS))
def test_transition_matrix(ledger: Ledger, op: str, state: DropState) -> None:
    """Each transition works from its allowed states with exactly its effect; from others it
    raises, changing nothing."""
    case = OPS[op]
    before = make_in_state(ledger, state)
    if state in case.allowed:
        result = case.call(ledger, before.id)
        after = ledger.get(before.id)
        assert after is not None
        assert after == dataclasses.replace(before, **case.changes(before, after))
        if op == "resubmit":
            assert_fresh_ready_row(ledger, before, result)
        else:
            assert result in (None, after)  # a returned Drop is the committed row
            assert ledger.all_drops() == [after]
        return
    rows = ledger.all_drops()
    # rearm is operator input (`aihub-watcher retry`), so it is a LedgerError, not a bug.
    expected = LedgerError if op == "rearm" else RuntimeError
    with pytest.raises(expected, match=state.value):
        case.call(ledger, before.id)
    assert ledger.all_drops() == rows


def assert_fresh_ready_row(ledger: Ledger, old: Drop, new: Drop) -> None:
    """resubmit's new row: live, ready, no attempt yet, the old row's rule/drop/input/deployment."""
    assert re.fullmatch(r"d-[0-9a-f]{12}", new.id) and new.id != old.id
    expected = Drop(
        id=new.id,
        rule=old.rule,
        drop=old.drop,
        fingerprint="fp9",
        state=DropState.READY,
        attempts=0,
        next_attempt_at=None,
        attempt_id=None,
        intent_at=None,
        run_id=None,
        run_status=None,
        last_error=None,
        last_response=None,
        input_dir=old.input_dir,
        deployment_id=old.deployment_id,
        created_at=AT,
        updated_at=AT,
        submitted_at=None,
        finished_at=None,
        post_action_done=False,
        archived=False,
    )
    assert new == expected
    assert [d.id for d in ledger.all_drops()] == [old.id, new.id]
    assert ledger.find_active(old.rule, old.drop) == new


# Each operation that an archived row would otherwise take, from a state archive() allows.
ARCHIVED_CASES = [
    ("begin_submit", DropState.READY),
    ("update_fingerprint", DropState.READY),
    ("mark_rejected", DropState.READY),
    ("mark_failed", DropState.READY),
    ("resubmit", DropState.COMPLETE),
    ("set_run_status", DropState.NEEDS_REVIEW),
]


@pytest.mark.parametrize(("op", "state"), ARCHIVED_CASES, ids=str)
def test_archived_rows_take_no_transitions(ledger: Ledger, op: str, state: DropState) -> None:
    """An archived row is out of play: transitions on it raise RuntimeError, changing nothing."""
    d = make_in_state(ledger, state)
    ledger.archive(d.id)
    rows = ledger.all_drops()
    with pytest.raises(RuntimeError, match="archived"):
        OPS[op].call(ledger, d.id)
    assert ledger.all_drops() == rows
