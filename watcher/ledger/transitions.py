"""The drop state machine: which states each operation starts from, and what it writes.

Backend-independent: each operation runs on the `Rows` of a write transaction the caller
holds. Imports only the core (`watcher.errors`, `watcher.model`) and `backend`; never SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final, NoReturn

from watcher.errors import LedgerError
from watcher.ledger.backend import Rows
from watcher.model import RUN_STATUS_STATES, TERMINAL, Drop, DropFile, DropState, SubmittedRun

_SUBMITTING: Final = frozenset({DropState.SUBMITTING})
# The states a drop waits in before its POST: the remote check, the upload, the queue.
BEFORE_SUBMIT: Final = frozenset({DropState.WAITING_REMOTE, DropState.UPLOADING, DropState.READY})
# A drop can be rejected/failed before any POST (e.g. its rule vanished on reload, a file is
# over the upload limit).
_GIVE_UP: Final = BEFORE_SUBMIT | {DropState.SUBMITTING}

# Allowed source states per operation, for live (not archived) rows. Anything else is a bug in
# the caller (RuntimeError), except for `rearm`: operator input, so a LedgerError.
ALLOWED_FROM: Final[Mapping[str, frozenset[DropState]]] = MappingProxyType(
    {
        "update_fingerprint": frozenset({DropState.DETECTED}) | BEFORE_SUBMIT,
        "resubmit": TERMINAL,
        # Never archive a drop with a request or a run in flight: the run still reads its files.
        "archive": frozenset({DropState.DETECTED}) | BEFORE_SUBMIT | TERMINAL,
        "remote_checked": frozenset({DropState.WAITING_REMOTE}),
        "upload_progress": frozenset({DropState.UPLOADING}),
        "results": frozenset({DropState.COMPLETE}),
        "begin_submit": frozenset({DropState.READY}),
        "mark_submitted": _SUBMITTING,
        "schedule_retry": _SUBMITTING,
        "release": _SUBMITTING,
        "mark_rejected": _GIVE_UP,
        "mark_failed": _GIVE_UP,
        # needs_review is terminal for us, but a human may resume the run at its checkpoint.
        "set_run_status": frozenset({DropState.SUBMITTED, DropState.NEEDS_REVIEW}),
        "mark_post_action_done": TERMINAL,
        "rearm": frozenset({DropState.FAILED, DropState.REJECTED}),
    }
)


def new_drop_id() -> str:
    """A short random id ("d-" + 12 hex chars), small enough for a run tag."""
    return "d-" + uuid.uuid4().hex[:12]


# --- the shared steps ----------------------------------------------------------------------


def _require(rows: Rows, drop_id: str, op: str) -> Drop:
    drop = rows.get(drop_id)
    if drop is None:
        raise RuntimeError(f"ledger.{op}: no drop {drop_id!r}")
    return drop


def _updated(rows: Rows, drop_id: str, values: Mapping[str, object]) -> Drop:
    rows.update(drop_id, values)
    result = rows.get(drop_id)
    assert result is not None
    return result


def _transition(
    rows: Rows,
    drop_id: str,
    op: str,
    values: Mapping[str, object] | Callable[[Drop], Mapping[str, object]],
    *,
    add: Mapping[str, int] | None = None,
) -> Drop:
    """Check that the live row may take `op`, write `values` (and add `add` to those counters)
    and return the new row. Fixed values take one statement; a callable of the current row
    (values that depend on it) reads the row first."""
    allowed = ALLOWED_FROM[op]
    if callable(values):
        drop = _require(rows, drop_id, op)
        if drop.archived or drop.state not in allowed:
            _refuse(drop, op)
        values = values(drop)
    updated = rows.update_live(drop_id, values, allowed, add=add)
    if updated is None:
        _refuse(_require(rows, drop_id, op), op)
    return updated


def _refuse(drop: Drop, op: str) -> NoReturn:
    allowed = ALLOWED_FROM[op]
    where = "archived" if drop.archived else drop.state.value
    raise RuntimeError(
        f"ledger.{op}: drop {drop.id} is {where}; allowed from "
        f"{sorted(s.value for s in allowed)} (not archived)"
    )


def _refuse_active(rows: Rows, rule: str, drop: str, op: str, *, active: Drop | None) -> None:
    if active is not None:
        raise RuntimeError(
            f"ledger.{op}: {rule}:{drop} already has live row {active.id} "
            f"({active.state.value}); archive() or resubmit() it first"
        )


# --- intake ----------------------------------------------------------------------------------


def record_ready(
    rows: Rows,
    *,
    rule: str,
    drop: str,
    fingerprint: str,
    input_dir: str | None,
    deployment_id: str,
    now: float,
    local_path: str | None = None,
    marker_path: str | None = None,
    state: DropState = DropState.READY,
    files: Sequence[DropFile] = (),
) -> Drop:
    """A new row in `state` (ready, waiting_remote or uploading), or the live `detected` row
    moved there; any other live row for (rule, drop) is a RuntimeError. `files` are recorded
    for the stages that work file by file."""
    if state not in BEFORE_SUBMIT:
        raise RuntimeError(f"ledger.record_ready: a new drop cannot start {state.value}")
    active = rows.find_active(rule, drop)
    if active is not None and active.state is DropState.DETECTED:
        if files:
            rows.replace_files(active.id, files)
        values = {
            "state": state.value,
            "fingerprint": fingerprint,
            "input_dir": input_dir,
            "deployment_id": deployment_id,
            "local_path": local_path,
            "marker_path": marker_path,
            "updated_at": now,
        }
        return _updated(rows, active.id, values)
    _refuse_active(rows, rule, drop, "record_ready", active=active)
    drop_id = new_drop_id()
    if files:
        rows.replace_files(drop_id, files)
    return rows.insert(
        drop_id=drop_id,
        rule=rule,
        drop=drop,
        fingerprint=fingerprint,
        state=state,
        input_dir=input_dir,
        deployment_id=deployment_id,
        now=now,
        local_path=local_path,
        marker_path=marker_path,
    )


def update_fingerprint(
    rows: Rows, drop_id: str, fingerprint: str, *, now: float, files: Sequence[DropFile] = ()
) -> Drop:
    """Not yet submitted: store the new fingerprint (and files), keep the row. An upload
    under way starts over in a new batch: the old one holds a mix of old and new files."""

    def values(d: Drop) -> Mapping[str, object]:
        if files:
            rows.replace_files(drop_id, files)
        out: dict[str, object] = {"fingerprint": fingerprint, "updated_at": now}
        if d.state is DropState.UPLOADING:
            out["batch_id"] = None
        return out

    return _transition(rows, drop_id, "update_fingerprint", values)


def resubmit(
    rows: Rows,
    drop_id: str,
    fingerprint: str,
    *,
    input_dir: str | None,
    deployment_id: str | None,
    now: float,
    state: DropState = DropState.READY,
    files: Sequence[DropFile] = (),
) -> Drop:
    """terminal: archive the row and insert a new one in `state` for the same (rule, drop)."""
    values = {"archived": 1, "updated_at": now}
    old = _transition(rows, drop_id, "resubmit", values)
    drop_id = new_drop_id()
    if files:
        rows.replace_files(drop_id, files)
    return rows.insert(
        drop_id=drop_id,
        rule=old.rule,
        drop=old.drop,
        fingerprint=fingerprint,
        state=state,
        input_dir=old.input_dir if input_dir is None else input_dir,
        deployment_id=old.deployment_id if deployment_id is None else deployment_id,
        now=now,
        local_path=old.local_path,
        marker_path=old.marker_path,
    )


def archive(rows: Rows, drop_id: str, *, now: float) -> None:
    """Retire the row; a no-op when it is archived already."""
    drop = _require(rows, drop_id, "archive")
    if drop.archived:
        return
    if drop.state not in ALLOWED_FROM["archive"]:
        raise RuntimeError(
            f"ledger.archive: drop {drop_id} is {drop.state.value}; a drop with a "
            "request or run in flight cannot be archived"
        )
    rows.update(drop_id, {"archived": 1, "updated_at": now})


# --- submission ------------------------------------------------------------------------------


def begin_submit(
    rows: Rows,
    drop_id: str,
    *,
    now: float,
    input_dir: str | None,
    deployment_id: str | None,
    submitted_by: str | None = None,
) -> Drop:
    """ready -> submitting: a new attempt_id, intent_at=now, attempts+1, the submitting host."""
    values: dict[str, object] = {
        "state": DropState.SUBMITTING.value,
        "attempt_id": uuid.uuid4().hex,
        "intent_at": now,
        "next_attempt_at": None,
        "updated_at": now,
    }
    given = {"input_dir": input_dir, "deployment_id": deployment_id, "submitted_by": submitted_by}
    values.update((k, v) for k, v in given.items() if v is not None)  # None keeps the stored one
    return _transition(rows, drop_id, "begin_submit", values, add={"attempts": 1})


def begin_submit_many(rows: Rows, drop_ids: Iterable[str], *, now: float) -> list[Drop]:
    """`begin_submit` for each id, in the caller's one transaction."""
    return [
        begin_submit(rows, drop_id, now=now, input_dir=None, deployment_id=None)
        for drop_id in drop_ids
    ]


def mark_submitted(
    rows: Rows, drop_id: str, *, run_id: str, run_status: str, response: str, now: float
) -> Drop:
    """submitting -> submitted, with the run."""
    values = {
        "state": DropState.SUBMITTED.value,
        "run_id": run_id,
        "run_status": run_status,
        "last_response": response,
        "submitted_at": now,
        "updated_at": now,
    }
    return _transition(rows, drop_id, "mark_submitted", values)


def mark_submitted_many(rows: Rows, results: Iterable[SubmittedRun], *, now: float) -> list[Drop]:
    """`mark_submitted` for each result, in the caller's one transaction."""
    return [
        mark_submitted(
            rows, r.drop_id, run_id=r.run_id, run_status=r.run_status, response=r.response, now=now
        )
        for r in results
    ]


def schedule_retry(
    rows: Rows, drop_id: str, *, next_attempt_at: float, error: str, now: float
) -> Drop:
    """submitting -> ready, due at next_attempt_at."""
    values = {
        "state": DropState.READY.value,
        "next_attempt_at": next_attempt_at,
        "last_error": error,
        "updated_at": now,
    }
    return _transition(rows, drop_id, "schedule_retry", values)


def mark_rejected(
    rows: Rows, drop_id: str, *, error: str, response: str | None, now: float
) -> Drop:
    """ready/submitting -> rejected; the previous response kept when `response` is None."""

    def values(d: Drop) -> Mapping[str, object]:
        return {
            "state": DropState.REJECTED.value,
            "last_error": error,
            "last_response": d.last_response if response is None else response,
            "finished_at": now,
            "next_attempt_at": None,
            "updated_at": now,
        }

    return _transition(rows, drop_id, "mark_rejected", values)


def mark_failed(rows: Rows, drop_id: str, *, error: str, now: float) -> Drop:
    """ready/submitting -> failed."""
    values = {
        "state": DropState.FAILED.value,
        "last_error": error,
        "finished_at": now,
        "next_attempt_at": None,
        "updated_at": now,
    }
    return _transition(rows, drop_id, "mark_failed", values)


def release(rows: Rows, drop_id: str, *, now: float) -> Drop:
    """submitting -> ready, due now, the attempt not counted."""

    def values(d: Drop) -> Mapping[str, object]:
        return {
            "state": DropState.READY.value,
            "attempts": max(0, d.attempts - 1),
            "attempt_id": None,
            "intent_at": None,
            "next_attempt_at": None,
            "updated_at": now,
        }

    return _transition(rows, drop_id, "release", values)


# --- tracking and operator -------------------------------------------------------------------


def set_run_status(rows: Rows, drop_id: str, *, run_status: str, response: str, now: float) -> Drop:
    """submitted/needs_review -> the state RUN_STATUS_STATES maps the status to (or submitted)."""
    state = RUN_STATUS_STATES.get(run_status, DropState.SUBMITTED)
    values = {
        "state": state.value,
        "run_status": run_status,
        "last_response": response,
        "finished_at": now if state in TERMINAL else None,
        "updated_at": now,
    }
    return _transition(rows, drop_id, "set_run_status", values)


def mark_post_action_done(rows: Rows, drop_id: str, *, now: float) -> None:
    """terminal (archived or not): the post-run action ran."""
    drop = _require(rows, drop_id, "mark_post_action_done")
    if drop.state not in ALLOWED_FROM["mark_post_action_done"]:
        raise RuntimeError(
            f"ledger.mark_post_action_done: drop {drop_id} is {drop.state.value}, not terminal"
        )
    rows.update(drop_id, {"post_action_done": 1, "updated_at": now})


def rearm(rows: Rows, drop_id: str, *, now: float, state: DropState = DropState.READY) -> Drop:
    """failed/rejected (live) -> `state` (the rule's first stage) with attempts=0, due now.

    Raises:
        LedgerError: no such drop, it is archived, or it is not failed/rejected.
    """
    drop = rows.get(drop_id)
    if drop is None:
        raise LedgerError(f"no drop {drop_id!r} in ledger {rows.location}")
    if drop.archived:
        raise LedgerError(f"drop {drop_id} is archived (its folder is gone or it was resubmitted)")
    if drop.state not in ALLOWED_FROM["rearm"]:
        raise LedgerError(
            f"drop {drop_id} is {drop.state.value}; only failed or rejected drops can be retried"
        )
    if state not in BEFORE_SUBMIT:
        raise RuntimeError(f"ledger.rearm: a drop cannot be re-armed to {state.value}")
    values = {
        "state": state.value,
        "attempts": 0,
        "next_attempt_at": None,
        "attempt_id": None,
        "intent_at": None,
        "finished_at": None,
        "updated_at": now,
    }
    return _updated(rows, drop_id, values)
