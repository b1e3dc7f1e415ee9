"""The ledger's stages around a run: files recorded at detection, uploads, the remote check,
results — each durable, so a restart resumes where the last process stopped. On both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ledger_stores import Store
from tests.unit.ledger_helpers import NOW
from watcher.ledger import Ledger
from watcher.model import DropFile, DropState

FILES = (
    DropFile(rel="a.pdf", size=10, mtime_ns=1),
    DropFile(rel="sub/b.pdf", size=20, mtime_ns=2),
)


@pytest.fixture
def ledger(ledger_store: Store) -> Iterator[Ledger]:
    with ledger_store.open() as led:
        yield led


def _record(led: Ledger, state: DropState, files=FILES):
    return led.record_ready(
        rule="r",
        drop="d1",
        fingerprint="fp1",
        input_dir="org/in/d1",
        deployment_id="dep",
        now=NOW,
        state=state,
        files=files,
    )


def test_files_recorded_at_detection_survive_a_reopen(ledger: Ledger, ledger_store: Store):
    """The files of an upload drop are in the ledger with the row, in one transaction."""
    d = _record(ledger, DropState.UPLOADING)
    ledger.close()
    with ledger_store.open() as again:
        assert again.stages.files_of(d.id) == list(FILES)
        assert again.get(d.id).state is DropState.UPLOADING


def test_an_upload_resumes_from_the_files_already_sent(ledger: Ledger, ledger_store: Store):
    """Batch id and each uploaded file are durable; a new batch starts every file over."""
    d = _record(ledger, DropState.UPLOADING)
    ledger.stages.set_batch(d.id, batch_id=41, now=NOW + 1)
    ledger.stages.file_uploaded(d.id, "a.pdf", now=NOW + 2)
    ledger.close()
    with ledger_store.open() as again:
        assert again.get(d.id).batch_id == 41
        assert [f.uploaded for f in again.stages.files_of(d.id)] == [True, False]
        again.stages.set_batch(d.id, batch_id=42, now=NOW + 3)
        assert not any(f.uploaded for f in again.stages.files_of(d.id))
        again.stages.file_uploaded(d.id, "a.pdf", now=NOW + 4)
        again.stages.file_uploaded(d.id, "sub/b.pdf", now=NOW + 5)
        done = again.stages.uploaded(d.id, now=NOW + 6)
        assert done.state is DropState.READY and done.batch_id == 42


def test_a_change_during_upload_starts_a_new_batch(ledger: Ledger):
    """New content while uploading: the files are replaced and the batch forgotten."""
    d = _record(ledger, DropState.UPLOADING)
    ledger.stages.set_batch(d.id, batch_id=41, now=NOW + 1)
    ledger.stages.file_uploaded(d.id, "a.pdf", now=NOW + 2)
    new_files = (DropFile(rel="a.pdf", size=11, mtime_ns=3),)
    after = ledger.update_fingerprint(d.id, "fp2", now=NOW + 3, files=new_files)
    assert after.batch_id is None and after.state is DropState.UPLOADING
    assert ledger.stages.files_of(d.id) == list(new_files)


def test_the_remote_check_records_what_is_missing_then_readies(ledger: Ledger):
    """waiting_remote keeps the missing list for `status`; all present -> ready."""
    d = _record(ledger, DropState.WAITING_REMOTE)
    waiting = ledger.stages.remote_checked(d.id, missing="waiting for b.pdf", now=NOW + 1)
    assert waiting.state is DropState.WAITING_REMOTE
    assert waiting.last_error == "waiting for b.pdf"
    ready = ledger.stages.remote_checked(d.id, missing=None, now=NOW + 2)
    assert ready.state is DropState.READY and ready.last_error is None


def test_results_are_tracked_until_saved(ledger: Ledger):
    """pending -> failed attempts counted with the error -> saved with the path."""
    d = _record(ledger, DropState.READY)
    ledger.begin_submit(d.id, now=NOW + 1)
    ledger.mark_submitted(d.id, run_id="r1", run_status="RUNNING", response="{}", now=NOW + 2)
    ledger.set_run_status(d.id, run_status="COMPLETE", response="{}", now=NOW + 3)
    assert ledger.stages.results_pending(d.id, now=NOW + 4).results_state == "pending"
    failed = ledger.stages.results_failed(d.id, error="HTTP 503", now=NOW + 5)
    assert failed.results_attempts == 1 and failed.results_error == "HTTP 503"
    saved = ledger.stages.results_saved(d.id, path="/r/d1.json", now=NOW + 6)
    assert saved.results_state == "saved" and saved.results_path == "/r/d1.json"
    assert saved.results_error is None and saved.results_attempts == 1


def test_retry_re_arms_to_the_first_stage_of_the_rule(ledger: Ledger):
    """`aihub-watcher retry` on an upload drop goes back to uploading, keeping its batch."""
    d = _record(ledger, DropState.UPLOADING)
    ledger.stages.set_batch(d.id, batch_id=7, now=NOW + 1)
    ledger.mark_rejected(d.id, error="413", response=None, now=NOW + 2)
    again = ledger.rearm(d.id, now=NOW + 3, state=DropState.UPLOADING)
    assert again.state is DropState.UPLOADING and again.batch_id == 7
