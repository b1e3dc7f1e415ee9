"""The types that detection, the ledger and the pipeline share: scans, ready drops, drop states.

Core: imports nothing from `watcher`. `detect` produces `ReadyDrop`s, the pipeline consumes them,
and neither imports the other; this module is where they meet.
"""

from __future__ import annotations

import enum
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# --- what a scan of a drop saw -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FileEntry:
    """One regular file of a drop, as seen by a scan."""

    rel: str  # POSIX path relative to the drop folder
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """What one walk of a drop folder saw. Two identical scans `settle_seconds` apart = complete."""

    drop: str  # POSIX path relative to watch
    files: tuple[FileEntry, ...]  # sorted by rel; hidden and in-progress files excluded
    in_progress: tuple[str, ...]  # rel paths matching an in-progress pattern
    errors: tuple[str, ...] = ()  # e.g. "sub/dir: permission denied"
    skipped: tuple[str, ...] = ()  # symlinks and special files, never followed

    def fingerprint(self) -> str:
        """sha256 (hex) over each file's (rel, size, mtime_ns): the drop's ledger identity."""
        h = hashlib.sha256()
        for f in self.files:
            _feed_entry(h, f)
        return h.hexdigest()

    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def state_digest(self) -> bytes:
        """A digest of everything settle compares (files, in-progress names, errors).

        Trackers keep this instead of the scan, so settling 100,000 files costs 32 bytes per drop.
        """
        h = hashlib.sha256()
        for f in self.files:
            _feed_entry(h, f)
        for section in (self.in_progress, self.errors):
            h.update(b"\x01")
            for rel in section:
                h.update(os.fsencode(rel) + b"\0")
        return h.digest()


def _feed_entry(h: hashlib._Hash, f: FileEntry) -> None:
    # NUL cannot occur in a file name, so names with newlines or odd bytes cannot collide.
    h.update(os.fsencode(f.rel) + b"\0" + f"{f.size}\0{f.mtime_ns}\0".encode())


# --- a complete drop, from the detector to the pipeline -------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyDrop:
    """A complete drop: what the pipeline records and submits."""

    rule: str
    drop: str  # POSIX path relative to watch
    scan: Scan
    marker: Path | None  # the ready marker to remove after submission (folder mode)
    detected_at: float  # time.time() when it was found complete


# --- drop states and AI Hub run statuses ---------------------------------------------------


class DropState(enum.StrEnum):
    """Where a drop is in its life. `failed` = retries exhausted; a run that ended FAILED is
    `run_failed`."""

    DETECTED = "detected"
    # Before `ready`: a drive drop waits until AI Hub sees every file with its local size; an
    # upload drop until its files are in an AI Hub batch.
    WAITING_REMOTE = "waiting_remote"
    UPLOADING = "uploading"
    READY = "ready"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    COMPLETE = "complete"
    RUN_FAILED = "run_failed"
    CANCELLED = "cancelled"
    NEEDS_REVIEW = "needs_review"
    REJECTED = "rejected"
    FAILED = "failed"


TERMINAL: Final = frozenset(
    {
        DropState.COMPLETE,
        DropState.RUN_FAILED,
        DropState.CANCELLED,
        DropState.NEEDS_REVIEW,
        DropState.REJECTED,
        DropState.FAILED,
    }
)

# Terminal and nothing left to follow: a needs_review run can still be resumed by a person, so
# its drop stays tracked and is never forgotten or archived by housekeeping.
SETTLED: Final = TERMINAL - {DropState.NEEDS_REVIEW}

# AI Hub run status -> drop state; any other status (RUNNING, PAUSED, ...) keeps `submitted`.
RUN_STATUS_STATES: Final[Mapping[str, DropState]] = {
    "COMPLETE": DropState.COMPLETE,
    "FAILED": DropState.RUN_FAILED,
    "CANCELLED": DropState.CANCELLED,
    "STOPPED_AT_CHECKPOINT": DropState.NEEDS_REVIEW,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Drop:
    """One ledger row, as read inside the transaction that last touched it."""

    id: str
    rule: str
    drop: str
    fingerprint: str
    state: DropState
    attempts: int
    next_attempt_at: float | None
    attempt_id: str | None
    intent_at: float | None
    run_id: str | None
    run_status: str | None
    last_error: str | None
    last_response: str | None
    input_dir: str | None
    deployment_id: str | None
    created_at: float
    updated_at: float
    submitted_at: float | None
    finished_at: float | None
    post_action_done: bool
    archived: bool = False
    # Resolved when detected (None on rows from before schema 4): what post-run actions touch.
    local_path: str | None = None
    marker_path: str | None = None
    # Upload source: the AI Hub batch its files go into (run with batch_id).
    batch_id: int | None = None
    # With results_dir: pending until the run's results are saved; saved; None when not wanted.
    results_state: str | None = None
    results_path: str | None = None
    results_attempts: int = 0
    results_error: str | None = None
    # A shared ledger (several hosts): the host that holds the drop's work, until when, and the
    # fencing epoch, raised by each new claim. None/0 on a single host.
    claimed_by: str | None = None
    lease_until: float | None = None
    claim_epoch: int = 0
    # ... and the host that recorded the intent to post the run (None on a single host).
    submitted_by: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True, slots=True, kw_only=True)
class DropFile:
    """One file of a drop as detected: what the remote check and the upload work from."""

    rel: str  # POSIX path relative to the drop folder
    size: int
    mtime_ns: int
    uploaded: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StateCount:
    """The ledger's drops of one rule in one state (archived ones included, as in `counts`).

    `due` and `oldest_at` look at live rows only: how many may be submitted now (ready ones
    whose retry time has come; 0 in other states), and the earliest `created_at` (when the
    drop was found complete).
    """

    rule: str
    state: str
    drops: int
    due: int
    oldest_at: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmittedRun:
    """One result for `Ledger.mark_submitted_many`."""

    drop_id: str
    run_id: str
    run_status: str
    response: str


# AI Hub run statuses after which the run no longer reads the drop's files.
RUN_TERMINAL: Final = frozenset({"COMPLETE", "FAILED", "CANCELLED"})
# Statuses the tracker acts on (STOPPED_AT_CHECKPOINT: needs_review, still tracked).
RUN_MOVED_ON: Final = RUN_TERMINAL | {"STOPPED_AT_CHECKPOINT"}
