"""The columns of a `drops` row, shared by every backend, and the row -> Drop mapping.

Imports only the core (`watcher.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from watcher.model import Drop, DropState

# The order of COLUMNS is the order row_to_drop reads.
COLUMNS: Final = (
    "id, rule, drop_path, fingerprint, state, attempts, next_attempt_at, attempt_id, intent_at, "
    "run_id, run_status, last_error, last_response, input_dir, deployment_id, created_at, "
    "updated_at, submitted_at, finished_at, post_action_done, archived, local_path, marker_path, "
    "batch_id, results_state, results_path, results_attempts, results_error, claimed_by, "
    "lease_until, claim_epoch, submitted_by"
)
SELECT: Final = f"SELECT {COLUMNS} FROM drops"  # noqa: S608 -- constant column list


def row_to_drop(row: Sequence[Any]) -> Drop:
    """A `drops` row selected with `SELECT` as a Drop."""
    return Drop(
        id=row[0],
        rule=row[1],
        drop=row[2],
        fingerprint=row[3],
        state=DropState(row[4]),
        attempts=row[5],
        next_attempt_at=row[6],
        attempt_id=row[7],
        intent_at=row[8],
        run_id=row[9],
        run_status=row[10],
        last_error=row[11],
        last_response=row[12],
        input_dir=row[13],
        deployment_id=row[14],
        created_at=row[15],
        updated_at=row[16],
        submitted_at=row[17],
        finished_at=row[18],
        post_action_done=bool(row[19]),
        archived=bool(row[20]),
        local_path=row[21],
        marker_path=row[22],
        batch_id=row[23],
        results_state=row[24],
        results_path=row[25],
        results_attempts=row[26],
        results_error=row[27],
        claimed_by=row[28],
        lease_until=row[29],
        claim_epoch=row[30],
        submitted_by=row[31],
    )
