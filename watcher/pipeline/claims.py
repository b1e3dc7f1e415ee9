"""Claims on a ledger several hosts share: the heartbeat, takeover of a silent host's drops,
and dropping work whose claim was lost.

Every host detects every drop; only the host holding a drop's claim submits it, tracks its run
and runs its post-run work. A host silent for `state.lease_seconds` loses its claims: another
host takes its `submitting` drops over and reconciles them by run tag (`Reconciler`) before
anything is posted again, and tracks its runs on. Does nothing on a single host (SQLite).
Imports the pipeline's state, the ledger and the core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

from watcher.errors import LedgerError
from watcher.ledger import ClaimLostError
from watcher.model import DropState
from watcher.pipeline.state import BEAT_S, PipelineState, Unsettled

log = structlog.get_logger("watcher.pipeline")


async def guarded(work: Coroutine[Any, Any, None]) -> None:
    """Run one drop's work; if its claim was lost meanwhile, drop that work (its new holder
    does it) instead of failing the loop."""
    try:
        await work
    except ClaimLostError as exc:
        log.warning("claim.lost", drop_id=exc.drop_id, error=str(exc))


class ClaimKeeper:
    """Beats every lease_seconds/3 and takes over the drops of hosts whose lease ended."""

    def __init__(self, state: PipelineState) -> None:
        self._state = state

    @property
    def active(self) -> bool:
        """Only on a shared ledger (the ledger works as a host)."""
        return self._state.ledger.host is not None

    async def run(self) -> None:
        state = self._state
        lease_s = state.config.state.lease_seconds
        while not state.stopping:
            state.beat("claims")
            try:
                state.ledger.heartbeat()
                self.take_over()
            except LedgerError as exc:
                # The database is away: our leases may lapse; fencing keeps that safe.
                log.warning("claims.heartbeat_failed", error=str(exc))
            await asyncio.sleep(min(lease_s / 3, BEAT_S))

    def take_over(self) -> None:
        """Drops whose holder's lease ended (or that nobody holds) become ours: a POST in
        flight is reconciled by its run tag first; a run is tracked on."""
        state = self._state
        ledger = state.ledger
        for d in ledger.take(DropState.SUBMITTING, only_new=True):
            if d.id not in state.needs_reconcile:
                state.needs_reconcile[d.id] = Unsettled(0.0, "taken over from a silent host")
                log.warning("claim.taken_over", rule=d.rule, drop=d.drop, drop_id=d.id)
                state.wake_submit.set()
        for d in ledger.take(DropState.SUBMITTED, DropState.NEEDS_REVIEW, only_new=True):
            if d.id not in state.tracked:
                state.tracked[d.id] = d
                log.info("claim.tracking", rule=d.rule, drop=d.drop, drop_id=d.id, run_id=d.run_id)
                state.new_runs = True  # polled soon, as a run just submitted
                state.wake_track.set()
