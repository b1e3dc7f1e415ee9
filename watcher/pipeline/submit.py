"""Submit: take due drops from the ledger, record the intent, POST one run each, act on the answer.

The intent is durable before each POST; what a failure means is decided by `hub.policy` alone.
Imports the pipeline's parts below it, the hub adapter and the ledger; never detect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import structlog

from watcher.config import Rule, input_dir_for, output_dir_for
from watcher.hub.errors import HubError, HubStatusError
from watcher.hub.models import Run
from watcher.hub.policy import (
    GiveUp,
    HoldAll,
    OutageBackoff,
    PauseHub,
    Reconcile,
    Reject,
    Retry,
    Step,
    next_step,
)
from watcher.model import Drop, SubmittedRun
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.fsops import remove_marker
from watcher.pipeline.gate import Gate
from watcher.pipeline.reconcile import Reconciler
from watcher.pipeline.state import PipelineState
from watcher.pipeline.tags import run_settings

log = structlog.get_logger("watcher.pipeline")

# How often an idle submit loop looks at the ledger for drops re-armed by `aihub-watcher retry`.
LEDGER_POLL_S = 2.0
# At most this many drops are begun in one transaction.
MAX_BATCH = 256
# A lost response is listed for only once a response could no longer be on its way.
MAX_RECONCILE_WAIT_S = 30.0
# After an unexpected exception around a POST, look for its run this much later.
CRASH_RECONCILE_WAIT_S = 5.0


class Submitter:
    """The submit loop and one task per POST in flight (at most max_concurrency)."""

    def __init__(
        self,
        state: PipelineState,
        *,
        calls: HubCalls,
        gate: Gate,
        reconciler: Reconciler,
    ) -> None:
        self._state = state
        self._calls = calls
        self._gate = gate
        self._reconciler = reconciler
        self._sem = asyncio.Semaphore(state.config.hub.max_concurrency)
        self.inflight: set[asyncio.Task[None]] = set()
        self._pending: list[SubmittedRun] = []

    def resize(self, max_concurrency: int) -> None:
        # In-flight tasks release the semaphore they took; new work takes the new one.
        self._sem = asyncio.Semaphore(max_concurrency)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        state = self._state
        while not state.stopping:
            await self._gate.wait_unpaused()
            if state.needs_reconcile:
                await self._reconciler.run_due()
            hold = self._gate.hold_left_s()
            if hold > 0:
                await self._sleep_or_wake(hold)
                continue
            sem, taken = await self._take_slots()
            if state.is_stopping() or self._gate.paused:
                for _ in range(taken):
                    sem.release()
                continue
            now = time.time()
            due = state.ledger.due(now, limit=taken)
            for _ in range(taken - len(due)):
                sem.release()
            if not due:
                await self._sleep_or_wake(self._idle_timeout(now))
                continue
            for drop, rule in self._begin(due, sem):
                task = asyncio.create_task(self._submit_one(drop, rule, sem))
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)

    async def _take_slots(self) -> tuple[asyncio.Semaphore, int]:
        """Every free slot (waiting for at least one): as many due drops are taken at once, and
        their intents recorded in one transaction, one fsync for the batch."""
        sem = self._sem
        await sem.acquire()
        taken = 1
        while taken < MAX_BATCH and not sem.locked():
            await sem.acquire()
            taken += 1
        return sem, taken

    def _idle_timeout(self, now: float) -> float:
        # Poll the ledger now and then: `aihub-watcher retry` re-arms drops from outside.
        next_at = self._state.ledger.next_due_at()
        timeout = LEDGER_POLL_S if next_at is None else min(LEDGER_POLL_S, next_at - now)
        if self._state.needs_reconcile:
            timeout = min(timeout, 1.0)
        return max(0.0, timeout)

    async def _sleep_or_wake(self, timeout: float | None) -> None:
        wake = self._state.wake_submit
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)

    def _begin(self, due: list[Drop], sem: asyncio.Semaphore) -> list[tuple[Drop, Rule]]:
        """Record the intent of every due drop in one transaction (durable before any POST)."""
        ledger = self._state.ledger
        now = time.time()
        started: list[tuple[Drop, Rule]] = []
        with ledger.batch():
            for drop in due:
                rule = self._state.rules.get(drop.rule)
                if rule is None:
                    sem.release()
                    self._rule_gone(drop, now)
                    continue
                begun = ledger.begin_submit(
                    drop.id,
                    now=now,
                    input_dir=input_dir_for(rule, drop.drop),
                    deployment_id=rule.deployment_id,
                )
                started.append((begun, rule))
        return started

    def _rule_gone(self, drop: Drop, now: float) -> None:
        self._state.ledger.mark_failed(
            drop.id,
            error=f"rule {drop.rule!r} is no longer in the config; restore it "
            "and run `aihub-watcher retry`",
            now=now,
        )
        log.error(
            "submit.gave_up",
            rule=drop.rule,
            drop=drop.drop,
            drop_id=drop.id,
            error="rule removed from config",
        )

    # --- one POST ---------------------------------------------------------------------------

    async def _submit_one(self, drop: Drop, rule: Rule, sem: asyncio.Semaphore) -> None:
        assert drop.input_dir is not None and drop.deployment_id is not None
        fields = {
            "rule": drop.rule,
            "drop": drop.drop,
            "drop_id": drop.id,
            "deployment_id": drop.deployment_id,
            "input_dir": drop.input_dir,
            "attempt": drop.attempts,
        }
        try:
            await self._gate.limiter.acquire()
            if self._state.is_stopping() or self._gate.paused:
                # Nothing was sent: the drop goes back to the queue, the attempt not counted.
                self._state.ledger.release(drop.id, now=time.time())
                return
            started = time.perf_counter()
            try:
                run = await self._post(drop, rule)
            except HubError as exc:
                self._failed(drop, rule, exc, fields, _ms_since(started))
                return
            except Exception as exc:
                # Not a hub answer (a bug, a closed pool): the POST may have gone out, so treat
                # it like a lost response and look for the run before any new attempt.
                log.error("submit.crashed", **fields, error=repr(exc), exc_info=exc)
                self._state.needs_reconcile[drop.id] = time.monotonic() + CRASH_RECONCILE_WAIT_S
                return
        finally:
            sem.release()
        self._succeeded(drop, rule, run, fields, _ms_since(started))

    async def _post(self, drop: Drop, rule: Rule) -> Run:
        client = self._calls.client
        return await self._calls.call(
            client.run_deployment,
            deployment_id=drop.deployment_id,
            input_dir=drop.input_dir,
            output_dir=output_dir_for(rule, drop.drop, now=datetime.now(UTC)),
            version=rule.version,
            settings=run_settings(rule, drop.id),
        )

    def _succeeded(
        self, drop: Drop, rule: Rule, run: Run, fields: dict[str, Any], latency_ms: float
    ) -> None:
        self._gate.note_success()
        self._queue_submitted(
            SubmittedRun(
                drop_id=drop.id,
                run_id=run.id,
                run_status=run.status,
                response=json.dumps(run.log_fields()),
            )
        )
        log.info(
            "run.submitted",
            **fields,
            run_id=run.id,
            status=run.status,
            http_status=202,
            latency_ms=latency_ms,
            response=run.log_fields(),
        )
        remove_marker(rule, drop.drop)
        self._state.new_runs = True

    def _queue_submitted(self, result: SubmittedRun) -> None:
        # Results are written in one transaction per loop turn. If the process dies before the
        # flush, the drop is still `submitting` and startup reconcile adopts its run by tag.
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush_submitted)
        self._pending.append(result)

    def flush_submitted(self) -> None:
        """Write the queued POST results in one transaction; their runs are tracked from now."""
        if self._pending:
            pending, self._pending = self._pending, []
            for d in self._state.ledger.mark_submitted_many(pending, now=time.time()):
                self._state.tracked[d.id] = d

    # --- acting on the policy's answer ------------------------------------------------------

    def _failed(
        self, drop: Drop, rule: Rule, exc: HubError, fields: dict[str, Any], latency_ms: float
    ) -> None:
        gate = self._gate
        step = next_step(
            exc,
            attempt=drop.attempts,
            max_attempts=rule.max_attempts,
            unwell_in_row=gate.unwell_in_row,
        )
        gate.note_failure(step)
        http_status = exc.http_status if isinstance(exc, HubStatusError) else None
        fields = {**fields, "http_status": http_status}
        self._apply(step, drop, exc, fields, latency_ms)

    def _apply(
        self, step: Step, drop: Drop, exc: HubError, fields: dict[str, Any], latency_ms: float
    ) -> None:
        ledger, now, error = self._state.ledger, time.time(), str(exc)
        match step:
            case HoldAll(delay_s) | OutageBackoff(delay_s):
                # About the hub, not this drop: hold everything back, the attempt not counted.
                self._gate.hold_all(delay_s)
                ledger.release(drop.id, now=now)
                if isinstance(step, HoldAll):
                    log.warning(
                        "submit.throttled",
                        **fields,
                        delay_s=round(delay_s, 3),
                        latency_ms=latency_ms,
                    )
                else:
                    log.warning(
                        "hub.unavailable",
                        **fields,
                        failures_in_row=self._gate.unwell_in_row,
                        delay_s=round(delay_s, 3),
                        error=error,
                    )
                self._state.wake_submit.set()
            case Retry(delay_s):
                ledger.schedule_retry(drop.id, next_attempt_at=now + delay_s, error=error, now=now)
                log.warning(
                    "submit.retry",
                    **fields,
                    delay_s=round(delay_s, 3),
                    latency_ms=latency_ms,
                    error=error,
                )
                self._state.wake_submit.set()
            case Reconcile():
                wait = min(self._state.config.hub.timeout_seconds, MAX_RECONCILE_WAIT_S)
                self._state.needs_reconcile[drop.id] = time.monotonic() + wait
                log.warning(
                    "submit.ambiguous",
                    **{k: v for k, v in fields.items() if k != "http_status"},
                    latency_ms=latency_ms,
                    error=error,
                    reconcile_in_s=wait,
                )
                self._state.wake_submit.set()
            case PauseHub():
                ledger.release(drop.id, now=now)
                self._gate.pause(error, fields["http_status"])
            case Reject(message):
                ledger.mark_rejected(
                    drop.id, error=error, response=json.dumps({"message": message}), now=now
                )
                log.error("run.rejected", **fields, msg=message, error=error)
            case GiveUp(reason):
                ledger.mark_failed(drop.id, error=error, now=now)
                log.error("submit.gave_up", **fields, error=reason)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
