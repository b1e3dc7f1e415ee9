"""The answers of POSTs that created a run, on their way into the ledger (submitting -> submitted).

Written in one transaction per loop turn, or inside the next batch of intents when that comes
first (one commit for both). Until written, a drop is still `submitting`: if the process dies,
startup reconcile adopts its run by tag. Imports the pipeline's state and the ledger's errors.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from watcher.errors import LedgerError, LedgerUnavailableError
from watcher.model import Drop, SubmittedRun
from watcher.pipeline.state import PipelineState, Unsettled

log = structlog.get_logger("watcher.pipeline")


class SubmittedQueue:
    """POST results not yet in the ledger."""

    def __init__(self, state: PipelineState) -> None:
        self._state = state
        self._pending: list[SubmittedRun] = []

    def add(self, result: SubmittedRun) -> None:
        """Queue one result; a flush is scheduled for this loop turn."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(result)

    def flush(self) -> None:
        """Write the queued results in one transaction; their runs are tracked from now."""
        if not self._pending:
            return
        pending = self.take()
        try:
            done = self.write(pending)
        except LedgerUnavailableError:
            raise  # the daemon holds and starts afresh: these are reconciled by tag
        except LedgerError as exc:
            # Still `submitting` in the ledger: their runs are adopted by tag.
            log.error("submit.record_failed", drops=len(pending), error=str(exc))
            for r in pending:
                self._state.needs_reconcile[r.drop_id] = Unsettled(0.0, str(exc))
            return
        self.track(pending, done)

    # --- riding along in another transaction (Submitter._begin) ----------------------------

    def take(self) -> list[SubmittedRun]:
        """Every queued result, handed to the caller to `write`, then `track` or `put_back`."""
        pending, self._pending = self._pending, []
        return pending

    def write(self, pending: list[SubmittedRun]) -> list[Drop]:
        """mark_submitted for `pending`: its own transaction, or part of the caller's batch."""
        if not pending:
            return []
        return self._state.ledger.mark_submitted_many(pending, now=time.time())

    def put_back(self, pending: list[SubmittedRun]) -> None:
        """The transaction that took `pending` rolled back: they wait for their own flush."""
        if pending:
            if not self._pending:
                asyncio.get_running_loop().call_soon(self.flush)
            self._pending = pending + self._pending

    def track(self, pending: list[SubmittedRun], done: list[Drop]) -> None:
        """After the commit: the recorded runs are tracked; any left out were taken over."""
        for d in done:
            self._state.tracked[d.id] = d
        if len(done) < len(pending):
            # A shared ledger: the drop was taken over while its POST was on its way.
            recorded = {d.id for d in done}
            for r in pending:
                if r.drop_id not in recorded:
                    log.error(
                        "run.claim_lost",
                        drop_id=r.drop_id,
                        run_id=r.run_id,
                        hint="another host holds this drop; if it posted too, cancel one run",
                    )
