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
from typing import Any, NamedTuple

import structlog

from watcher.config import Rule, output_dir_for
from watcher.errors import LedgerUnavailableError
from watcher.hub.client import HubClient
from watcher.hub.errors import HubError, HubNotSentError
from watcher.hub.models import Run
from watcher.ledger import ClaimLostError
from watcher.model import Drop, SubmittedRun
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.claims import guarded
from watcher.pipeline.failures import FailedPost, rule_gone_error
from watcher.pipeline.fsops import marker_path, remove_marker_off_loop
from watcher.pipeline.gate import Gate
from watcher.pipeline.reconcile import Reconciler
from watcher.pipeline.request import run_call
from watcher.pipeline.schedules import Closed, Schedules
from watcher.pipeline.state import BEAT_S, PipelineState, Unsettled
from watcher.pipeline.submitted import SubmittedQueue

log = structlog.get_logger("watcher.pipeline")

# How often an idle submit loop looks at the ledger for drops re-armed by `aihub-watcher retry`.
LEDGER_POLL_S = 2.0
# At most this many drops are begun in one transaction.
MAX_BATCH = 256
# After an unexpected exception around a POST, look for its run this much later.
CRASH_RECONCILE_WAIT_S = 5.0


def send_margin_s(lease_s: float) -> float:
    """How long before our lease on a drop ends its POST may no longer start: a fifth of the
    lease (at least 1 s), for clock skew between hosts and for the request to reach AI Hub and
    its run to show up before another host, past the lease, lists runs by the drop's tag."""
    return max(1.0, lease_s / 5)


class Started(NamedTuple):
    """A drop whose intent is recorded: what its POST sends."""

    drop: Drop
    rule: Rule
    output_dir: str | None


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
        self._submitted = SubmittedQueue(state)
        self._failures = FailedPost(state, gate=gate)
        self._schedules = Schedules(state)

    def resize(self, max_concurrency: int) -> None:
        # In-flight tasks release the semaphore they took; new work takes the new one.
        self._sem = asyncio.Semaphore(max_concurrency)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        state = self._state
        while not state.stopping:
            state.beat("submit")
            if not await self._gate.wait_unpaused(BEAT_S):
                continue
            if state.needs_reconcile:
                await self._reconciler.run_due()
            hold = self._gate.hold_left_s()
            if hold > 0:
                await self._sleep_or_wake(min(hold, BEAT_S))
                continue
            slots = await self._take_slots()
            if slots is None:
                continue
            sem, taken = slots
            admitted = 0 if state.is_stopping() else self._gate.admit(taken)
            for _ in range(taken - admitted):
                sem.release()
            if not admitted:
                await self._sleep_or_wake(LEDGER_POLL_S)
                continue
            taken = admitted
            now = time.time()
            # Drops of a rule outside its active_hours wait `ready`; higher priority goes first.
            closed = self._schedules.closed()
            due = state.ledger.due(
                now, limit=taken, skip_rules=closed.rules, priority=self._schedules.priority()
            )
            for _ in range(taken - len(due)):
                sem.release()
            if not due:
                # A trial after a pause that found no drop (all of closed rules) is not spent.
                self._gate.trial_released()
                await self._sleep_or_wake(self._idle_timeout(now, closed))
                continue
            for one in self._begin(due, sem):
                task = asyncio.create_task(guarded(self._submit_one(one, sem)))
                self.inflight.add(task)
                task.add_done_callback(self.inflight.discard)

    async def _take_slots(self) -> tuple[asyncio.Semaphore, int] | None:
        """Every free slot (waiting up to BEAT_S for one): as many due drops are taken at once,
        and their intents recorded in one transaction, one fsync for the batch."""
        sem = self._sem
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races the acquire, and the loop would then never stop.
            async with asyncio.timeout(BEAT_S):
                await sem.acquire()
        except TimeoutError:
            return None
        taken = 1
        while taken < MAX_BATCH and not sem.locked():
            await sem.acquire()
            taken += 1
        return sem, taken

    def _idle_timeout(self, now: float, closed: Closed) -> float:
        # Poll the ledger now and then: `aihub-watcher retry` re-arms drops from outside.
        next_at = self._state.ledger.next_due_at(skip_rules=closed.rules)
        timeout = LEDGER_POLL_S if next_at is None else min(LEDGER_POLL_S, next_at - now)
        opens_at = closed.first_opening()
        if opens_at is not None:
            timeout = min(timeout, opens_at - self._state.clock())
        if self._state.needs_reconcile:
            timeout = min(timeout, 1.0)
        return max(0.0, timeout)

    async def _sleep_or_wake(self, timeout: float | None) -> None:
        wake = self._state.wake_submit
        wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await wake.wait()

    def _begin(self, due: list[Drop], sem: asyncio.Semaphore) -> list[Started]:
        """Record the intent of every due drop in one transaction (durable before any POST),
        with the POST results queued since the last flush: one commit for both."""
        ledger = self._state.ledger
        now = time.time()
        started: list[Started] = []
        pending = self._submitted.take()
        try:
            with ledger.batch():
                submitted = self._submitted.write(pending)
                self._begin_in_batch(due, sem, now, started)
        except BaseException:
            # Nothing of the batch was written: the results wait for their own flush.
            self._submitted.put_back(pending)
            raise
        self._submitted.track(pending, submitted)
        return started

    def _begin_in_batch(
        self, due: list[Drop], sem: asyncio.Semaphore, now: float, started: list[Started]
    ) -> None:
        ledger = self._state.ledger
        for drop in due:
            rule = self._state.rules.get(drop.rule)
            if rule is None:
                sem.release()
                self._rule_gone(drop, now)
                continue
            try:
                output_dir = output_dir_for(rule, drop.drop, now=datetime.now(UTC))
            except ValueError as exc:
                sem.release()
                self._bad_template(drop, str(exc), now)
                continue
            # input_dir stays as resolved at detection: a reload that changed remote_dir
            # must not send another folder's path. The deployment is the rule's current one.
            try:
                begun = ledger.begin_submit(drop.id, now=now, deployment_id=rule.deployment_id)
            except ClaimLostError:  # a shared ledger: another host took it meanwhile
                sem.release()
                continue
            started.append(Started(begun, rule, output_dir))

    def _bad_template(self, drop: Drop, error: str, now: float) -> None:
        self._state.ledger.mark_rejected(drop.id, error=error, response=None, now=now)
        log.error("drop.rejected", rule=drop.rule, drop=drop.drop, drop_id=drop.id, error=error)

    def _rule_gone(self, drop: Drop, now: float) -> None:
        self._state.ledger.mark_failed(drop.id, error=rule_gone_error(drop.rule), now=now)
        log.error(
            "submit.gave_up",
            rule=drop.rule,
            drop=drop.drop,
            drop_id=drop.id,
            error="rule removed from config",
        )

    # --- one POST ---------------------------------------------------------------------------

    async def _submit_one(self, one: Started, sem: asyncio.Semaphore) -> None:
        drop, rule = one.drop, one.rule
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
                self._gate.trial_released()
                return
            started = time.perf_counter()
            try:
                run = await self._post(one)
            except HubNotSentError as exc:
                # Not sent: our lease on the drop (nearly) ended while this host was frozen
                # between its claim check and the send. Back to the queue if the drop is still
                # ours (the lease was renewed meanwhile); else ClaimLostError: its new holder
                # has it.
                self._state.ledger.release(drop.id, now=time.time())
                log.warning("submit.not_sent", **fields, error=str(exc))
                return
            except HubError as exc:
                self._failures.handle(drop, rule, exc, fields, _ms_since(started))
                return
            except (ClaimLostError, LedgerUnavailableError):
                # Nothing was sent: its new holder has the drop; or the database is away and
                # the daemon holds, then reconciles it by tag (app/outage.py).
                raise
            except Exception as exc:
                # Not a hub answer (a bug, a closed pool): the POST may have gone out, so treat
                # it like a lost response and look for the run before any new attempt.
                log.error("submit.crashed", **fields, error=repr(exc), exc_info=exc)
                self._state.metrics.submitted(drop.rule, "ambiguous", _ms_since(started) / 1000)
                self._state.needs_reconcile[drop.id] = Unsettled(
                    time.monotonic() + CRASH_RECONCILE_WAIT_S, repr(exc)
                )
                return
        finally:
            sem.release()
        self._succeeded(drop, rule, run, fields, _ms_since(started))

    async def _post(self, one: Started) -> Run:
        drop, rule, output_dir = one.drop, one.rule, one.output_dir
        deployment_id, input_dir, batch_id = drop.deployment_id, drop.input_dir, drop.batch_id
        assert deployment_id is not None  # set by begin_submit
        # An uploaded drop runs on its batch; a drive drop on its folder.
        assert (batch_id is None) != (input_dir is None)
        call = run_call(
            rule,
            drop_id=drop.id,
            deployment_id=deployment_id,
            input_dir=input_dir,
            batch_id=batch_id,
            output_dir=output_dir,
        )
        check = self._state.ledger.check_claim
        margin = send_margin_s(self._state.config.state.lease_seconds)

        def post(c: HubClient) -> Run:
            # A shared ledger: never post for a drop another host may have taken over. AI Hub
            # has no idempotency key, so the POST is fenced by time instead: checked here on
            # the sending thread, and not sent once our lease is within `margin` of its
            # end (checked again right before the first byte goes out: a host frozen in
            # between, e.g. by SIGSTOP, sends nothing when it wakes after a takeover).
            lease_until = check(drop.id)
            send_before = None if lease_until is None else lease_until - margin
            return c.run_deployment(**call.kwargs(), send_before=send_before)

        if self._calls.posts_on_loop and self._state.ledger.host is None:
            # One host: no claim to check, and no thread hop (see hub/loop_post.py). A shared
            # ledger keeps the claim check on the sending thread, right before the send.
            return await self._calls.post_run(lambda p: p.run_deployment(**call.kwargs()))
        return await self._calls.call(post)

    def _succeeded(
        self, drop: Drop, rule: Rule, run: Run, fields: dict[str, Any], latency_ms: float
    ) -> None:
        self._gate.note_success()
        metrics = self._state.metrics
        metrics.submitted(drop.rule, "accepted", latency_ms / 1000)
        metrics.run_started(drop.rule, time.time() - drop.created_at)
        self._submitted.add(
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
        marker = marker_path(drop, rule)
        if marker is not None:
            self._state.spawn(remove_marker_off_loop(marker, drop_id=drop.id), "marker")
        self._state.new_runs = True

    def flush_submitted(self) -> None:
        """Write the queued POST results now (see `SubmittedQueue`)."""
        self._submitted.flush()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
