"""The stages around a run: the remote check, the upload into a batch, the results download.

Backend-independent state changes (on the `Rows` of a write transaction) and `StageLedger`,
the part of the ledger's interface the pipeline's stage workers use. Imports the core and
this package; never SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Concatenate, ParamSpec, TypeVar

from watcher.ledger.backend import Queries, Rows
from watcher.ledger.transitions import _transition
from watcher.model import Drop, DropFile, DropState

P = ParamSpec("P")
T = TypeVar("T")

RESULTS_PENDING = "pending"
RESULTS_SAVED = "saved"


def remote_checked(rows: Rows, drop_id: str, *, missing: str | None, now: float) -> Drop:
    """waiting_remote: every file seen with its size -> ready; else record what is missing."""

    def values(_d: Drop) -> Mapping[str, object]:
        if missing is None:
            return {"state": DropState.READY.value, "last_error": None, "updated_at": now}
        return {"last_error": missing, "updated_at": now}

    return _transition(rows, drop_id, "remote_checked", values)


def set_batch(rows: Rows, drop_id: str, *, batch_id: int | None, now: float) -> Drop:
    """uploading: the drop's files go into this batch from now on (none of them sent yet)."""
    rows.clear_uploaded(drop_id)
    values = {"batch_id": batch_id, "updated_at": now}
    return _transition(rows, drop_id, "upload_progress", values)


def file_uploaded(rows: Rows, drop_id: str, rel: str, *, now: float) -> Drop:
    """uploading: one more file is in the batch (a restart does not send it again)."""
    rows.set_uploaded(drop_id, rel, True)
    values = {"updated_at": now}
    return _transition(rows, drop_id, "upload_progress", values)


def upload_note(rows: Rows, drop_id: str, *, error: str | None, now: float) -> Drop:
    """uploading: why the upload waits (shown by `status`), or None once it moves again."""
    values = {"last_error": error, "updated_at": now}
    return _transition(rows, drop_id, "upload_progress", values)


def uploaded(rows: Rows, drop_id: str, *, now: float) -> Drop:
    """uploading -> ready: the batch holds every file; the run is posted with batch_id."""
    values = {"state": DropState.READY.value, "last_error": None, "updated_at": now}
    return _transition(rows, drop_id, "upload_progress", values)


def results_pending(rows: Rows, drop_id: str, *, now: float) -> Drop:
    """complete: the run's results are to be saved to the rule's results_dir."""
    values = {"results_state": RESULTS_PENDING, "updated_at": now}
    return _transition(rows, drop_id, "results", values)


def results_saved(rows: Rows, drop_id: str, *, path: str, now: float) -> Drop:
    values = {
        "results_state": RESULTS_SAVED,
        "results_path": path,
        "results_error": None,
        "updated_at": now,
    }
    return _transition(rows, drop_id, "results", values)


def results_failed(rows: Rows, drop_id: str, *, error: str, now: float) -> Drop:
    """A fetch or write of the results failed; it is tried again (attempts counted)."""

    def values(d: Drop) -> Mapping[str, object]:
        return {
            "results_attempts": d.results_attempts + 1,
            "results_error": error,
            "updated_at": now,
        }

    return _transition(rows, drop_id, "results", values)


class StageLedger:
    """The ledger calls of the remote check, the uploader and the results fetcher."""

    def __init__(
        self,
        read: Callable[[], AbstractContextManager[Queries]],
        write: Callable[[], AbstractContextManager[Rows]],
        fence: Callable[[Rows, str, str], object] | None = None,
    ) -> None:
        self._read = read
        self._write = write
        # A shared ledger: checks in each write's transaction that the drop is still ours.
        self._fence = fence

    def _do(self, op: Callable[Concatenate[Rows, P], T], *a: P.args, **k: P.kwargs) -> T:
        with self._write() as rows:
            if self._fence is not None:
                self._fence(rows, str(a[0]), op.__name__)
            return op(rows, *a, **k)

    def files_of(self, drop_id: str) -> list[DropFile]:
        with self._read() as rows:
            return rows.files_of(drop_id)

    def results_pending_drops(self) -> list[Drop]:
        with self._read() as rows:
            return rows.results_pending()

    def remote_checked(self, drop_id: str, *, missing: str | None, now: float) -> Drop:
        return self._do(remote_checked, drop_id, missing=missing, now=now)

    def set_batch(self, drop_id: str, *, batch_id: int | None, now: float) -> Drop:
        return self._do(set_batch, drop_id, batch_id=batch_id, now=now)

    def file_uploaded(self, drop_id: str, rel: str, *, now: float) -> Drop:
        return self._do(file_uploaded, drop_id, rel, now=now)

    def upload_note(self, drop_id: str, *, error: str | None, now: float) -> Drop:
        return self._do(upload_note, drop_id, error=error, now=now)

    def uploaded(self, drop_id: str, *, now: float) -> Drop:
        return self._do(uploaded, drop_id, now=now)

    def results_pending(self, drop_id: str, *, now: float) -> Drop:
        return self._do(results_pending, drop_id, now=now)

    def results_saved(self, drop_id: str, *, path: str, now: float) -> Drop:
        return self._do(results_saved, drop_id, path=path, now=now)

    def results_failed(self, drop_id: str, *, error: str, now: float) -> Drop:
        return self._do(results_failed, drop_id, error=error, now=now)
