"""`Ledger`: the one interface the pipeline and the CLI use, over a storage backend (SQLite).

Each call is one read or write transaction. Imports only the core (`watcher.model`) and this
package; never config, hub, fs, pipeline or detect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

from watcher.ledger import transitions
from watcher.ledger.backend import Backend, Rows
from watcher.ledger.queue import DueQueue
from watcher.ledger.sqlite import SQLiteBackend
from watcher.ledger.stages import StageLedger
from watcher.model import Drop, DropFile, DropState, StateCount, SubmittedRun

P = ParamSpec("P")
T = TypeVar("T")


def _now(now: float | None) -> float:
    return time.time() if now is None else now


class Ledger(DueQueue):
    """The drop ledger: one row per drop, in one SQLite file (WAL, synchronous=FULL).

    Every write method is one transaction and is durable when it returns. `batch()` groups
    several writes into one transaction. Impossible transitions raise RuntimeError (a bug); an
    unusable database raises LedgerError.
    """

    def __init__(self, path: Path) -> None:
        """Open or create the ledger at `path` and migrate it to `SCHEMA_VERSION`.

        Raises:
            LedgerError: the file is not an SQLite database, is not a ledger, or was written by
                a newer aihub-watcher.
        """
        self._backend: Backend = SQLiteBackend.open(path)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Ledger:
        """Open (creating the directory and file if needed) `state_dir/ledger.sqlite3`.

        Raises:
            LedgerError: as for `Ledger(path)`, or the directory cannot be created.
        """
        return cls._on(SQLiteBackend.in_state_dir(state_dir))

    @classmethod
    def open_readonly(cls, path: Path) -> Ledger:
        """Open an existing ledger read-only (for `status`): never creates it, never writes.

        Raises:
            LedgerError: there is no ledger at `path`, it is unreadable, or its schema is not
                the one this version knows (run the daemon once to migrate it).
        """
        return cls._on(SQLiteBackend.open_readonly(path))

    @classmethod
    def _on(cls, backend: Backend) -> Ledger:
        # Bypasses __init__, which opens a writable SQLite file.
        ledger = cls.__new__(cls)
        ledger._backend = backend
        return ledger

    @property
    def path(self) -> Path:
        """Where the ledger lives."""
        return self._backend.path

    @property
    def readonly(self) -> bool:
        """True when opened with `open_readonly`: every write raises RuntimeError."""
        return self._backend.readonly

    def close(self) -> None:
        """Close the ledger (idempotent). Any later use raises RuntimeError."""
        self._backend.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r}, {'ro' if self.readonly else 'rw'})"

    @property
    def stages(self) -> StageLedger:
        """The calls of the remote check, the uploader and the results fetcher."""
        return StageLedger(self._backend.read, self._backend.write)

    def schema_version(self) -> int:
        """The schema version of the open file (== SCHEMA_VERSION once opened)."""
        return self._backend.schema_version()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the write calls inside into ONE transaction (one fsync), all or nothing.

        Nested batches join the outer one. On any exception everything in the batch is rolled
        back. The Drops returned inside reflect uncommitted state until the block exits.
        """
        with self._backend.write():
            yield

    # --- reads --------------------------------------------------------------------------------

    def get(self, drop_id: str) -> Drop | None:
        """The row with this id (archived or not)."""
        with self._backend.read() as rows:
            return rows.get(drop_id)

    def find_active(self, rule: str, drop: str) -> Drop | None:
        """The live (not archived) row for (rule, drop), if any. There is at most one."""
        with self._backend.read() as rows:
            return rows.find_active(rule, drop)

    def in_state(self, *states: DropState, include_archived: bool = False) -> list[Drop]:
        """Rows in any of `states` (live ones unless include_archived), oldest first."""
        if not states:
            return []
        with self._backend.read() as rows:
            return rows.in_state(states, include_archived=include_archived)

    def active_drops(self) -> list[Drop]:
        """Every live (not archived) row, oldest first."""
        return self.all_drops(include_archived=False)

    def all_drops(self, *, include_archived: bool = True) -> list[Drop]:
        """Every row, oldest first."""
        with self._backend.read() as rows:
            return rows.all_drops(include_archived=include_archived)

    def counts(self) -> dict[str, int]:
        """Drops per state, archived ones included (a drop moved away after its run is still
        complete); every DropState value is a key (0 when none)."""
        result = {state.value: 0 for state in DropState}
        with self._backend.read() as rows:
            result.update(rows.counts())
        return result

    # --- writes: each is one transaction, or part of the enclosing batch() --------------------
    # What each one checks and writes is documented in `transitions`.

    def _write(self, op: Callable[Concatenate[Rows, P], T], *a: P.args, **k: P.kwargs) -> T:
        with self._backend.write() as rows:
            return op(rows, *a, **k)

    def record_ready(
        self,
        *,
        rule: str,
        drop: str,
        fingerprint: str,
        input_dir: str | None,
        deployment_id: str,
        now: float | None = None,
        local_path: str | None = None,
        marker_path: str | None = None,
        state: DropState = DropState.READY,
        files: Sequence[DropFile] = (),
    ) -> Drop:
        """A new row in `state` (ready, waiting_remote or uploading), with its `files`.
        RuntimeError if (rule, drop) has another live row (the caller decides first)."""
        return self._write(
            transitions.record_ready,
            rule=rule,
            drop=drop,
            fingerprint=fingerprint,
            input_dir=input_dir,
            deployment_id=deployment_id,
            now=_now(now),
            local_path=local_path,
            marker_path=marker_path,
            state=state,
            files=files,
        )

    def update_fingerprint(
        self,
        drop_id: str,
        fingerprint: str,
        *,
        now: float | None = None,
        files: Sequence[DropFile] = (),
    ) -> Drop:
        """The content of a drop not yet submitted changed: keep its row (a new batch)."""
        return self._write(
            transitions.update_fingerprint, drop_id, fingerprint, now=_now(now), files=files
        )

    def resubmit(
        self,
        drop_id: str,
        fingerprint: str,
        *,
        input_dir: str | None = None,
        deployment_id: str | None = None,
        now: float | None = None,
        state: DropState = DropState.READY,
        files: Sequence[DropFile] = (),
    ) -> Drop:
        """on_change=resubmit: archive the terminal row; a new row in `state` for the same drop."""
        return self._write(
            transitions.resubmit,
            drop_id,
            fingerprint,
            input_dir=input_dir,
            deployment_id=deployment_id,
            now=_now(now),
            state=state,
            files=files,
        )

    def archive(self, drop_id: str, *, now: float | None = None) -> None:
        """Retire a row (folder gone after terminal, or gone before submission) so that a
        same-named new drop gets a fresh row. Idempotent. RuntimeError while in flight."""
        self._write(transitions.archive, drop_id, now=_now(now))

    def begin_submit(
        self,
        drop_id: str,
        *,
        now: float,
        input_dir: str | None = None,
        deployment_id: str | None = None,
    ) -> Drop:
        """Record the intent to POST (ready -> submitting), durable before the request is sent.
        input_dir/deployment_id, when given, replace the stored ones (the rule changed)."""
        return self._write(
            transitions.begin_submit,
            drop_id,
            now=now,
            input_dir=input_dir,
            deployment_id=deployment_id,
        )

    def begin_submit_many(self, drop_ids: Iterable[str], *, now: float) -> list[Drop]:
        """`begin_submit` for each id in ONE transaction (all or nothing)."""
        return self._write(transitions.begin_submit_many, drop_ids, now=now)

    def mark_submitted(
        self, drop_id: str, *, run_id: str, run_status: str, response: str, now: float
    ) -> Drop:
        """The run exists (POST answered, or reconcile adopted it): submitting -> submitted."""
        return self._write(
            transitions.mark_submitted,
            drop_id,
            run_id=run_id,
            run_status=run_status,
            response=response,
            now=now,
        )

    def mark_submitted_many(self, results: Iterable[SubmittedRun], *, now: float) -> list[Drop]:
        """`mark_submitted` for each result in ONE transaction (all or nothing)."""
        return self._write(transitions.mark_submitted_many, results, now=now)

    def schedule_retry(
        self, drop_id: str, *, next_attempt_at: float, error: str, now: float
    ) -> Drop:
        """The attempt failed retryably: submitting -> ready, due at next_attempt_at."""
        return self._write(
            transitions.schedule_retry,
            drop_id,
            next_attempt_at=next_attempt_at,
            error=error,
            now=now,
        )

    def mark_rejected(self, drop_id: str, *, error: str, response: str | None, now: float) -> Drop:
        """Permanent 4xx: (submitting|ready) -> rejected; keeps the old response if None."""
        return self._write(
            transitions.mark_rejected, drop_id, error=error, response=response, now=now
        )

    def mark_failed(self, drop_id: str, *, error: str, now: float) -> Drop:
        """Retries exhausted (or given up): (submitting|ready) -> failed."""
        return self._write(transitions.mark_failed, drop_id, error=error, now=now)

    def release(self, drop_id: str, *, now: float) -> Drop:
        """The POST was never sent (hub paused, shutting down): submitting -> ready, due now,
        and the attempt is not counted (attempts-1, attempt_id/intent_at cleared)."""
        return self._write(transitions.release, drop_id, now=now)

    def set_run_status(self, drop_id: str, *, run_status: str, response: str, now: float) -> Drop:
        """Record a polled run status: COMPLETE->complete, FAILED->run_failed,
        CANCELLED->cancelled, STOPPED_AT_CHECKPOINT->needs_review, else stays submitted."""
        return self._write(
            transitions.set_run_status, drop_id, run_status=run_status, response=response, now=now
        )

    def mark_post_action_done(self, drop_id: str, *, now: float | None = None) -> None:
        """The post-run action (keep/delete/move) ran; only after a terminal state."""
        self._write(transitions.mark_post_action_done, drop_id, now=_now(now))

    def rearm(self, drop_id: str, *, now: float, state: DropState = DropState.READY) -> Drop:
        """`aihub-watcher retry`: failed/rejected -> `state` (its rule's first stage).

        Raises:
            LedgerError: no such drop, it is archived, or it is not failed/rejected.
        """
        return self._write(transitions.rearm, drop_id, now=now, state=state)


def state_counts(ledger: Ledger, now: float) -> list[StateCount]:
    """Drops per (rule, state) in one read (archived ones included, as in `counts()`), with how
    many live ready ones are due by `now` and the oldest live one's created_at: what a metrics
    scrape reads. A function beside the class, which is at its size limit."""
    with ledger._backend.read() as rows:
        return rows.state_counts(now)
