"""Copying every row of one ledger into another (`aihub-watcher ledger migrate`): drops with all
their columns, archived ones included, and the files of each, in one write transaction.

Backend-independent: reads the source's `Queries`, writes the target's `Rows`. Imports only
the core (`watcher.model`) and `backend`.
"""

from __future__ import annotations

from dataclasses import dataclass

from watcher.ledger.backend import Queries, Rows
from watcher.model import Drop

# Every column `insert` leaves at its default, set by one update right after it.
_LATER: tuple[str, ...] = (
    "state",
    "attempts",
    "next_attempt_at",
    "attempt_id",
    "intent_at",
    "run_id",
    "run_status",
    "last_error",
    "last_response",
    "created_at",
    "updated_at",
    "submitted_at",
    "finished_at",
    "post_action_done",
    "archived",
    "batch_id",
    "results_state",
    "results_path",
    "results_attempts",
    "results_error",
    "claimed_by",
    "lease_until",
    "claim_epoch",
    "submitted_by",
)


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy wrote."""

    drops: int
    files: int


def _values(drop: Drop) -> dict[str, object]:
    values: dict[str, object] = {name: getattr(drop, name) for name in _LATER}
    values["state"] = drop.state.value
    values["post_action_done"] = int(drop.post_action_done)
    values["archived"] = int(drop.archived)
    return values


def copy_rows(source: Queries, target: Rows) -> Copied:
    """Copy every row of `source` into `target`, oldest first (the caller holds the target's
    transaction, and checked that it is empty). Ids, states, runs and attempts are kept, so the
    target's daemon tracks each run on and posts nothing again."""
    files = 0
    drops = source.all_drops(include_archived=True)
    for drop in drops:
        target.insert(
            drop_id=drop.id,
            rule=drop.rule,
            drop=drop.drop,
            fingerprint=drop.fingerprint,
            state=drop.state,
            input_dir=drop.input_dir,
            deployment_id=drop.deployment_id,
            now=drop.created_at,
            local_path=drop.local_path,
            marker_path=drop.marker_path,
        )
        # Archived at once: the next row of the same drop may be the live one.
        target.update(drop.id, _values(drop))
        drop_files = source.files_of(drop.id)
        if drop_files:
            target.replace_files(drop.id, drop_files)
            for f in drop_files:
                if f.uploaded:
                    target.set_uploaded(drop.id, f.rel, True)
            files += len(drop_files)
    return Copied(drops=len(drops), files=files)
