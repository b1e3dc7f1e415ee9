"""Helpers of the ledger's unit tests: drops walked into any state through the real API."""

from __future__ import annotations

from watcher.ledger import Ledger
from watcher.model import Drop, DropState

NOW = 1_700_000_000.0


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
    """A live `detected` row, written by the backend's own insert: no ledger method records one."""
    drop_id = f"d-{len(led.all_drops()):012x}"
    with led._backend.write() as rows:
        rows.insert(
            drop_id=drop_id,
            rule="r",
            drop=drop,
            fingerprint=fingerprint,
            state=DropState.DETECTED,
            input_dir=None,
            deployment_id=None,
            now=NOW,
        )
    got = led.get(drop_id)
    assert got is not None
    return got


def make_in_state(led: Ledger, state: DropState, drop: str = "a") -> Drop:
    """Walk a fresh drop through legal transitions until it is in `state`."""
    if state is DropState.DETECTED:
        return insert_detected(led, drop)
    if state in (DropState.WAITING_REMOTE, DropState.UPLOADING):
        return led.record_ready(
            rule="r",
            drop=drop,
            fingerprint="fp1",
            input_dir=f"org/ws/fs/drive/in/{drop}",
            deployment_id="dep-1",
            now=NOW,
            state=state,
        )
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
