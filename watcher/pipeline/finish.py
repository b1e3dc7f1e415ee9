"""After a run ends: the rule's on_complete / on_failure action, once, then the drop is archived.

Every action is safe to repeat (a crash may interrupt it); a failed one is retried with back-off
until it succeeds. Imports the pipeline's state and filesystem helpers; never the hub client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog

from watcher.hub.errors import HubError, HubRejectedError
from watcher.hub.policy import backoff_delay_s
from watcher.ledger import ClaimLostError
from watcher.ledger.stages import RESULTS_PENDING
from watcher.model import Drop, DropState
from watcher.pipeline import actions, fsops
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.state import PipelineState

log = structlog.get_logger("watcher.pipeline")

# A hung mount must not stall the daemon: an action taking longer counts as failed (the thread
# finishes on its own) and is tried again later.
ACTION_TIMEOUT_S = 300.0
# Back-off between attempts of a failed action: from retry_base_s, doubling, at most this.
MAX_RETRY_S = 3600.0


class Finisher:
    """Applies post-run actions only once the run no longer reads the drop's files."""

    def __init__(self, state: PipelineState, *, calls: HubCalls, retry_base_s: float = 5.0) -> None:
        self._state = state
        self._calls = calls
        self._retry_base_s = retry_base_s
        # Drop id -> (the drop, attempts so far, monotonic time of the next attempt).
        self._retries: dict[str, tuple[Drop, int, float]] = {}
        self._wake = asyncio.Event()

    def needs_work(self, drop: Drop) -> bool:
        """True when the run's end calls for more than marking it done: a folder action, or a
        batch to delete."""
        return self.action_for(drop) != "keep" or self._batch_to_delete(drop) is not None

    def _batch_to_delete(self, drop: Drop) -> int | None:
        rule = self._state.rules.get(drop.rule)
        if rule is None or rule.source != "upload" or not rule.upload.delete_batch:
            return None
        return drop.batch_id

    def action_for(self, drop: Drop) -> str:
        """`keep`, `delete` or `move:<dir>`; `keep` for a rule no longer in the config."""
        rule = self._state.rules.get(drop.rule)
        if rule is None:
            return "keep"
        return rule.on_complete if drop.state is DropState.COMPLETE else rule.on_failure

    async def finish_interrupted(self) -> None:
        """Post-run actions a crash or shutdown interrupted (terminal run, action not done)."""
        ledger = self._state.ledger
        for d in ledger.in_state(DropState.COMPLETE, DropState.RUN_FAILED, DropState.CANCELLED):
            if not d.post_action_done:
                await self.post_run(d)

    async def run(self) -> None:
        """Retry failed actions when they are due."""
        while not self._state.is_stopping():
            now = time.monotonic()
            due = [(d, n) for d, n, at in self._retries.values() if at <= now]
            for drop, attempts in due:
                await self.post_run(drop, attempt=attempts + 1)
            later = [at for _, _, at in self._retries.values()]
            self._wake.clear()
            timeout = max(0.0, min(later) - time.monotonic()) if later else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def post_run(self, drop: Drop, *, attempt: int = 1) -> None:
        """Apply on_complete / on_failure to a drop whose run ended."""
        state = self._state
        rule = state.rules.get(drop.rule)
        if rule is None or drop.post_action_done or not state.ledger.claim(drop.id):
            # A shared ledger: another host holds the drop, and runs its post-run work.
            self._retries.pop(drop.id, None)
            return
        if drop.results_state == RESULTS_PENDING:
            return  # the results fetcher calls again once they are on disk
        action = self.action_for(drop)
        source = fsops.local_path(drop, rule)
        assert source is not None  # the rule is known
        fields = {"rule": drop.rule, "drop": drop.drop, "drop_id": drop.id, "action": action}
        try:
            await self._delete_batch(drop)
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                outcome = await asyncio.to_thread(_apply, action, source, drop.id)
        except (OSError, TimeoutError, HubError) as exc:
            self._failed(drop, attempt, fields, exc)
            return
        self._retries.pop(drop.id, None)
        try:
            state.ledger.mark_post_action_done(drop.id)
        except ClaimLostError as exc:  # its new holder finds the action done (idempotent)
            log.warning("claim.lost", drop_id=drop.id, error=str(exc))
            return
        if action == "keep":
            return
        state.ledger.archive(drop.id)
        state.drop_forgotten(drop.rule, drop.drop)
        if outcome.target is not None:
            fields["target"] = str(outcome.target)
        log.info("post_action.done", **fields, already_done=outcome.already, attempt=attempt)

    async def _delete_batch(self, drop: Drop) -> None:
        """upload.delete_batch: the batch was a transient copy; gone already is fine."""
        batch_id = self._batch_to_delete(drop)
        if batch_id is None:
            return
        try:
            await self._calls.call(lambda c: c.batches.delete_batch(batch_id))
        except HubRejectedError as exc:
            if exc.http_status != 404:
                raise
        log.info("upload.batch_deleted", rule=drop.rule, drop_id=drop.id, batch_id=batch_id)

    def _failed(self, drop: Drop, attempt: int, fields: dict[str, str], exc: Exception) -> None:
        # The drop stays where it is; the action is tried again until it works.
        delay = backoff_delay_s(attempt, base_s=self._retry_base_s, cap_s=MAX_RETRY_S)
        self._retries[drop.id] = (drop, attempt, time.monotonic() + delay)
        self._wake.set()
        log.error(
            "post_action.failed",
            **fields,
            attempt=attempt,
            retry_in_s=round(delay, 3),
            error=repr(exc) if not isinstance(exc, TimeoutError) else "timed out",
        )


def _apply(action: str, source: Path, drop_id: str) -> actions.Outcome:
    if action == "delete":
        return actions.delete(source)
    if action.startswith("move:"):
        return actions.move(source, Path(action[5:]), drop_id)
    return actions.Outcome()
