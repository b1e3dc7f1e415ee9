"""Ready drops -> one AI Hub run each: submit, reconcile, retry, track runs, post-run actions.

Runs on the daemon's asyncio loop, which is the only thread that touches the ledger. HTTP calls run
on a small thread pool with the sync client (measured faster here than httpx's AsyncClient).
Imports adapters and pure modules; never the daemon or the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from watcher.config import Config, Rule
from watcher.hub.client import HubClient
from watcher.hub.errors import (
    HubAuthError,
    HubError,
    HubRateLimitedError,
    HubServerError,
    HubStatusError,
    HubTransportError,
)
from watcher.hub.models import Run
from watcher.hub.policy import (
    GiveUp,
    PauseHub,
    Reconcile,
    Reject,
    Retry,
    backoff_delay_s,
    next_step,
)
from watcher.ledger import Ledger
from watcher.model import (
    RUN_MOVED_ON,
    RUN_STATUS_STATES,
    RUN_TERMINAL,
    TERMINAL,
    Drop,
    DropState,
    ReadyDrop,
    SubmittedRun,
)
from watcher.rules import input_dir_for, output_dir_for

log = structlog.get_logger("watcher.pipeline")

T = TypeVar("T")

# Every run we create carries this tag, so a run whose response was lost can be found again.
TAG_PREFIX = "aihub-watcher:drop="

# How far back (seconds) to list runs when looking for one we may have created: covers clock
# skew between this host and AI Hub.
RECONCILE_SKEW_S = 600
# How often an idle submit loop looks at the ledger for drops re-armed by `aihub-watcher retry`.
LEDGER_POLL_S = 2.0
# After this many retryable failures in a row the hub itself is down: hold every submission
# back instead of burning each drop's attempts during the outage.
OUTAGE_AFTER = 5
# Runs submitted within this window are tracked with one list call per deployment; older ones
# (long runs, runs waiting for review) with a get per run, less and less often.
TRACK_LIST_WINDOW_S = 900
# A drop folder must be seen missing this many housekeeping rounds in a row before it is forgotten.
MISSING_ROUNDS = 2


def drop_tag(drop_id: str) -> str:
    return f"{TAG_PREFIX}{drop_id}"


def run_settings(rule: Rule, drop_id: str) -> dict[str, Any]:
    """The rule's settings plus our drop tag (the rule's own tags are kept)."""
    settings: dict[str, Any] = rule.settings_dict()
    tags = [str(t) for t in settings.get("tags") or []]
    tags.append(drop_tag(drop_id))
    settings["tags"] = tags
    return settings


class RateLimiter:
    """A simple pacing limiter: at most `rate` acquisitions per second (None: unlimited)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = 0.0

    async def acquire(self) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        wait = self._next - now
        self._next = max(now, self._next) + 1.0 / self.rate
        if wait > 0:
            await asyncio.sleep(wait)


class Pipeline:
    """Owns every drop from `ready` to its terminal state."""

    def __init__(
        self,
        *,
        config: Config,
        ledger: Ledger,
        client: HubClient,
        track_min_s: float = 1.0,
        track_max_s: float = 30.0,
        probe_s: float = 30.0,
        housekeeping_s: float = 60.0,
        forget: Callable[[str, str], None] | None = None,
    ) -> None:
        self._config = config
        self._rules: dict[str, Rule] = {r.name: r for r in config.rules}
        self._ledger = ledger
        self._client = client
        self._retired_clients: list[HubClient] = []
        self._pool = self._new_pool(config.hub.max_concurrency)
        self._sem = asyncio.Semaphore(config.hub.max_concurrency)
        self._limiter = RateLimiter(config.hub.max_rps)
        self._wake = asyncio.Event()
        self._track_wake = asyncio.Event()
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._pending_submitted: list[SubmittedRun] = []
        self._pending_ready: list[ReadyDrop] = []
        self._known: set[tuple[str, str]] = set()
        self._root_dev: dict[str, int] = {}
        self._missing_rounds: dict[str, int] = {}
        self._change_warned: set[tuple[str, str]] = set()
        # Drop id -> monotonic time before which its reconcile listing must not run.
        self._needs_reconcile: dict[str, float] = {}
        self._reconcile_failures = 0
        # Hub-wide hold (429 Retry-After, outage backoff): no POST before this monotonic time.
        self._not_before = 0.0
        self._failures_in_row = 0
        self._last_polled: dict[str, float] = {}
        # Drops whose run is being tracked (submitted / needs_review), kept in memory so a
        # tracker pass costs nothing per untouched run: the ledger is written on changes only.
        self._tracked: dict[str, Drop] = {}
        # Set by each submission; the tracker looks at new runs within track_min_s.
        self._new_runs = False
        self._track_min_s = track_min_s
        self._track_max_s = track_max_s
        self._probe_s = probe_s
        self._housekeeping_s = housekeeping_s
        self._forget = forget
        self.submitted_total = 0

    # --- wiring -----------------------------------------------------------------------------

    @staticmethod
    def _new_pool(workers: int) -> ThreadPoolExecutor:
        # Workers for submissions plus a few for tracking, so polling never starves submits.
        return ThreadPoolExecutor(max_workers=workers + 2, thread_name_prefix="aihub-http")

    def set_forget(self, forget: Callable[[str, str], None]) -> None:
        self._forget = forget

    def _stopping_now(self) -> bool:
        # A method, not the attribute: the flag changes while a loop awaits.
        return self._stopping

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    def is_known(self, rule: str, drop: str) -> bool:
        """True when the ledger has an active row for this drop (safe from any thread)."""
        return (rule, drop) in self._known

    def update_config(self, config: Config) -> None:
        """Apply a reloaded config: changed rules apply to drops not yet submitted."""
        old = self._config
        self._config = config
        # Removed rules stay resolvable: their drops already in the ledger still finish.
        self._rules.update({r.name: r for r in config.rules})
        if config.hub.max_rps != old.hub.max_rps:
            self._limiter = RateLimiter(config.hub.max_rps)
        if config.hub.max_concurrency != old.hub.max_concurrency:
            # In-flight tasks release the semaphore they took; new work takes the new one.
            self._sem = asyncio.Semaphore(config.hub.max_concurrency)
            old_pool, self._pool = self._pool, self._new_pool(config.hub.max_concurrency)
            old_pool.shutdown(wait=False)
        self._wake.set()

    def replace_client(self, client: HubClient) -> None:
        """Swap in a client built with a new token or hub settings, and resume if paused.

        The old client may still be serving in-flight calls: it is closed at shutdown.
        """
        self._retired_clients.append(self._client)
        self._client = client
        if self.paused:
            self._resume("token changed")

    def counts(self) -> dict[str, int]:
        return self._ledger.counts()

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pipeline.task_failed", task=task.get_name(), error=repr(task.exception()))

    # --- startup ----------------------------------------------------------------------------

    async def startup(self) -> None:
        """Load the active drops; reconcile those left `submitting`; finish interrupted work."""
        for d in self._ledger.active_drops():
            self._known.add((d.rule, d.drop))
        orphans = {d.rule for d in self._ledger.active_drops() if d.rule not in self._rules}
        for rule_name in sorted(orphans):
            log.warning(
                "rule.missing",
                rule=rule_name,
                hint="drops of this rule are in the ledger but the rule is not in the config",
            )
        self._tracked = {
            d.id: d for d in self._ledger.in_state(DropState.SUBMITTED, DropState.NEEDS_REVIEW)
        }
        left = self._ledger.in_state(DropState.SUBMITTING)
        if left:
            log.info("reconcile.startup", drops=len(left))
            self._needs_reconcile.update({d.id: 0.0 for d in left})

    async def _finish_post_actions(self) -> None:
        """Post-run actions a crash or shutdown interrupted (terminal run, action not done)."""
        for d in self._ledger.in_state(
            DropState.COMPLETE, DropState.RUN_FAILED, DropState.CANCELLED
        ):
            if not d.post_action_done:
                await self._post_run(d)

    # --- intake -----------------------------------------------------------------------------

    async def on_ready(self, ready: ReadyDrop) -> None:
        """A complete drop from the detector: record it once; the submit loop takes it from here.

        Drops that become ready in the same loop turn are recorded in one transaction.
        """
        if ready.rule not in self._rules:
            return
        if not self._pending_ready:
            asyncio.get_running_loop().call_soon(self.flush_ready)
        self._pending_ready.append(ready)
        self._known.add((ready.rule, ready.drop))

    def flush_ready(self) -> None:
        pending, self._pending_ready = self._pending_ready, []
        if not pending:
            return
        with self._ledger.batch():
            for ready in pending:
                self._record_ready(ready)
        self._wake.set()

    def _record_ready(self, ready: ReadyDrop) -> None:
        rule = self._rules[ready.rule]
        if rule.name not in self._root_dev:
            with contextlib.suppress(OSError):
                self._root_dev[rule.name] = os.stat(rule.watch).st_dev
        fingerprint = ready.scan.fingerprint()
        existing = self._ledger.find_active(ready.rule, ready.drop)
        fields = {"rule": ready.rule, "drop": ready.drop}
        if existing is None:
            drop = self._ledger.record_ready(
                rule=rule.name,
                drop=ready.drop,
                fingerprint=fingerprint,
                input_dir=input_dir_for(rule, ready.drop),
                deployment_id=rule.deployment_id,
            )
            log.info(
                "drop.ready",
                **fields,
                drop_id=drop.id,
                files=len(ready.scan.files),
                bytes=ready.scan.total_bytes(),
                input_dir=drop.input_dir,
                fingerprint=fingerprint[:16],
            )
            return
        if existing.fingerprint == fingerprint:
            return
        if existing.state is DropState.READY:
            self._ledger.update_fingerprint(existing.id, fingerprint)
            log.info("drop.updated", **fields, drop_id=existing.id, fingerprint=fingerprint[:16])
            return
        if rule.on_change == "resubmit" and existing.state in TERMINAL:
            drop = self._ledger.resubmit(existing.id, fingerprint)
            log.info("drop.resubmit", **fields, drop_id=drop.id, previous_drop_id=existing.id)
            return
        if (existing.id, fingerprint) not in self._change_warned:
            self._change_warned.add((existing.id, fingerprint))
            log.warning(
                "drop.changed_after_submit",
                **fields,
                drop_id=existing.id,
                state=str(existing.state),
                on_change=rule.on_change,
                hint="not resubmitted; set on_change: resubmit on the rule to run changed drops",
            )

    # --- the loops --------------------------------------------------------------------------

    async def run(self) -> None:
        """Submit, track and keep house until cancelled."""
        await self._finish_post_actions()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._submit_loop(), name="submit")
            tg.create_task(self._track_loop(), name="track")
            tg.create_task(self._housekeeping_loop(), name="housekeeping")

    async def _submit_loop(self) -> None:
        while not self._stopping:
            await self._unpaused.wait()
            if self._needs_reconcile:
                await self._reconcile_pending()
            hold = self._not_before - time.monotonic()
            if hold > 0:
                await self._sleep_or_wake(hold)
                continue
            # Take every free slot (waiting for at least one), then as many due drops as slots,
            # and record all their intents in one transaction: one fsync for the batch.
            sem = self._sem
            await sem.acquire()
            taken = 1
            while taken < 256 and not sem.locked():
                await sem.acquire()
                taken += 1
            if self._stopping_now() or self.paused:
                for _ in range(taken):
                    sem.release()
                continue
            now = time.time()
            due = self._ledger.due(now, limit=taken)
            for _ in range(taken - len(due)):
                sem.release()
            if not due:
                # Poll the ledger now and then: `aihub-watcher retry` re-arms drops from outside.
                next_at = self._ledger.next_due_at()
                timeout = LEDGER_POLL_S if next_at is None else min(LEDGER_POLL_S, next_at - now)
                if self._needs_reconcile:
                    timeout = min(timeout, 1.0)
                await self._sleep_or_wake(max(0.0, timeout))
                continue
            now = time.time()
            started: list[tuple[Drop, Rule]] = []
            with self._ledger.batch():
                for drop in due[:taken]:
                    rule = self._rules.get(drop.rule)
                    if rule is None:
                        sem.release()
                        self._ledger.mark_failed(
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
                        continue
                    begun = self._ledger.begin_submit(
                        drop.id,
                        now=now,
                        input_dir=input_dir_for(rule, drop.drop),
                        deployment_id=rule.deployment_id,
                    )
                    started.append((begun, rule))
            for drop, rule in started:
                task = asyncio.create_task(self._submit_one(drop, rule, sem))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _sleep_or_wake(self, timeout: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

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
            await self._limiter.acquire()
            if self._stopping_now() or self.paused:
                # Nothing was sent: the drop goes back to the queue, the attempt not counted.
                self._ledger.release(drop.id, now=time.time())
                return
            started = time.perf_counter()
            try:
                run = await self._call(
                    self._client.run_deployment,
                    deployment_id=drop.deployment_id,
                    input_dir=drop.input_dir,
                    output_dir=output_dir_for(rule, drop.drop, now=datetime.now(UTC)),
                    version=rule.version,
                    settings=run_settings(rule, drop.id),
                )
            except HubError as exc:
                latency_ms = round((time.perf_counter() - started) * 1000, 1)
                self._submit_failed(drop, rule, exc, fields, latency_ms)
                return
            except Exception as exc:
                # Not a hub answer (a bug, a closed pool): the POST may have gone out, so treat
                # it like a lost response and look for the run before any new attempt.
                log.error("submit.crashed", **fields, error=repr(exc), exc_info=exc)
                self._needs_reconcile[drop.id] = time.monotonic() + 5.0
                return
        finally:
            sem.release()
        self._failures_in_row = 0
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        self._queue_submitted(
            SubmittedRun(
                drop_id=drop.id,
                run_id=run.id,
                run_status=run.status,
                response=json.dumps(run.log_fields()),
            )
        )
        self.submitted_total += 1
        log.info(
            "run.submitted",
            **fields,
            run_id=run.id,
            status=run.status,
            http_status=202,
            latency_ms=latency_ms,
            response=run.log_fields(),
        )
        self._remove_marker(rule, drop.drop)
        self._new_runs = True

    def _queue_submitted(self, result: SubmittedRun) -> None:
        # Results are written in one transaction per loop turn. If the process dies before the
        # flush, the drop is still `submitting` and startup reconcile adopts its run by tag.
        if not self._pending_submitted:
            asyncio.get_running_loop().call_soon(self.flush_submitted)
        self._pending_submitted.append(result)

    def flush_submitted(self) -> None:
        if self._pending_submitted:
            pending, self._pending_submitted = self._pending_submitted, []
            for d in self._ledger.mark_submitted_many(pending, now=time.time()):
                self._tracked[d.id] = d

    def _hold_all(self, delay_s: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + delay_s)

    def _submit_failed(
        self,
        drop: Drop,
        rule: Rule,
        exc: HubError,
        fields: dict[str, Any],
        latency_ms: float,
    ) -> None:
        http_status = exc.http_status if isinstance(exc, HubStatusError) else None
        now = time.time()
        if isinstance(exc, HubRateLimitedError):
            # The hub's throttle is about all of us, not this drop: hold everything back and
            # do not count the attempt.
            delay = exc.retry_after_s if exc.retry_after_s is not None else backoff_delay_s(2)
            self._hold_all(delay)
            self._ledger.release(drop.id, now=now)
            log.warning(
                "submit.throttled",
                **fields,
                http_status=429,
                delay_s=round(delay, 3),
                latency_ms=latency_ms,
            )
            self._wake.set()
            return
        if isinstance(exc, HubServerError | HubTransportError):
            self._failures_in_row += 1
            if self._failures_in_row >= OUTAGE_AFTER:
                # An outage, not a bad drop: back off hub-wide without burning attempts.
                delay = backoff_delay_s(self._failures_in_row - OUTAGE_AFTER + 1, base_s=2.0)
                self._hold_all(delay)
                self._ledger.release(drop.id, now=now)
                log.warning(
                    "hub.unavailable",
                    **fields,
                    http_status=http_status,
                    failures_in_row=self._failures_in_row,
                    delay_s=round(delay, 3),
                    error=str(exc),
                )
                self._wake.set()
                return
        step = next_step(exc, drop.attempts, max_attempts=rule.max_attempts)
        if isinstance(step, Retry):
            self._ledger.schedule_retry(
                drop.id, next_attempt_at=now + step.delay_s, error=str(exc), now=now
            )
            log.warning(
                "submit.retry",
                **fields,
                http_status=http_status,
                delay_s=round(step.delay_s, 3),
                latency_ms=latency_ms,
                error=str(exc),
            )
            self._wake.set()
        elif isinstance(step, Reconcile):
            # The server may still be creating the run: list only once a response could no
            # longer be on its way.
            wait = min(self._config.hub.timeout_seconds, 30.0)
            self._needs_reconcile[drop.id] = time.monotonic() + wait
            log.warning(
                "submit.ambiguous",
                **fields,
                latency_ms=latency_ms,
                error=str(exc),
                reconcile_in_s=wait,
            )
            self._wake.set()
        elif isinstance(step, PauseHub):
            self._ledger.release(drop.id, now=now)
            self._pause(str(exc), http_status)
        elif isinstance(step, Reject):
            self._ledger.mark_rejected(
                drop.id, error=str(exc), response=json.dumps({"message": step.message}), now=now
            )
            log.error(
                "run.rejected", **fields, http_status=http_status, msg=step.message, error=str(exc)
            )
        elif isinstance(step, GiveUp):
            self._ledger.mark_failed(drop.id, error=str(exc), now=now)
            log.error("submit.gave_up", **fields, http_status=http_status, error=step.reason)

    # --- reconcile --------------------------------------------------------------------------

    async def _reconcile_pending(self) -> None:
        """Adopt runs that a lost response or a crash left unrecorded; re-arm the rest.

        Never re-posts a drop until a listing of its deployment has come back without its run.
        """
        now_mono = time.monotonic()
        ready_ids = [i for i, t in self._needs_reconcile.items() if t <= now_mono]
        drops: list[Drop] = []
        for drop_id in ready_ids:
            d = self._ledger.get(drop_id)
            if d is None or d.state is not DropState.SUBMITTING:
                self._needs_reconcile.pop(drop_id, None)
            else:
                drops.append(d)
        by_deployment: dict[str, list[Drop]] = defaultdict(list)
        for d in drops:
            rule = self._rules.get(d.rule)
            by_deployment[d.deployment_id or (rule.deployment_id if rule else "")].append(d)
        for deployment_id, group in by_deployment.items():
            since = int(min(d.created_at for d in group)) - RECONCILE_SKEW_S
            try:
                runs = await self._call(
                    lambda dep=deployment_id, s=since: list(
                        self._client.iter_runs(
                            deployment_id=dep, from_timestamp=s, order="ASCENDING"
                        )
                    )
                )
            except HubError as exc:
                self._reconcile_failures += 1
                retry_in = backoff_delay_s(self._reconcile_failures, base_s=2.0, cap_s=120.0)
                for d in group:
                    self._needs_reconcile[d.id] = time.monotonic() + retry_in
                log.warning(
                    "reconcile.failed",
                    deployment_id=deployment_id,
                    drops=len(group),
                    retry_in_s=round(retry_in, 3),
                    error=str(exc),
                )
                if isinstance(exc, HubAuthError):
                    self._pause(str(exc), exc.http_status)
                continue
            self._reconcile_failures = 0
            self._adopt_or_rearm(deployment_id, group, runs)

    def _adopt_or_rearm(self, deployment_id: str, group: list[Drop], runs: list[Run]) -> None:
        by_tag: dict[str, list[Run]] = defaultdict(list)
        for run in runs:
            for tag in run.tags:
                if tag.startswith(TAG_PREFIX):
                    by_tag[tag].append(run)
        by_input = {
            run.input_dir: run
            for run in runs
            if run.input_dir and not any(t.startswith(TAG_PREFIX) for t in run.tags)
        }
        now = time.time()
        for d in group:
            self._needs_reconcile.pop(d.id, None)
            fields = {"rule": d.rule, "drop": d.drop, "drop_id": d.id}
            tagged = sorted(by_tag.get(drop_tag(d.id), []), key=lambda r: r.start_timestamp or 0)
            found: Run | None = tagged[0] if tagged else None
            if len(tagged) > 1:
                log.error(
                    "run.duplicate",
                    **fields,
                    run_ids=[r.id for r in tagged],
                    hint="adopted the oldest; cancel the others in AI Hub",
                )
            if found is None and d.input_dir in by_input:
                candidate = by_input[d.input_dir]
                # Without our tag, only trust a run started after we recorded the intent.
                if (candidate.start_timestamp or 0) / 1e9 >= (d.intent_at or now) - 60:
                    found = candidate
            rule = self._rules.get(d.rule)
            if found is not None:
                adopted = self._ledger.mark_submitted(
                    d.id,
                    run_id=found.id,
                    run_status=found.status,
                    response=json.dumps(found.log_fields()),
                    now=now,
                )
                self._tracked[adopted.id] = adopted
                self.submitted_total += 1
                log.info(
                    "run.adopted",
                    **fields,
                    run_id=found.id,
                    status=found.status,
                    deployment_id=deployment_id,
                    input_dir=d.input_dir,
                    response=found.log_fields(),
                )
                if rule is not None:
                    self._remove_marker(rule, d.drop)
                self._track_wake.set()
                continue
            max_attempts = rule.max_attempts if rule is not None else d.attempts
            if d.attempts >= max_attempts:
                self._ledger.mark_failed(d.id, error=d.last_error or "no run found", now=now)
                log.error("submit.gave_up", **fields, error="retries exhausted")
            else:
                delay = backoff_delay_s(d.attempts)
                self._ledger.schedule_retry(
                    d.id,
                    next_attempt_at=now + delay,
                    error=d.last_error or "no response; no run found",
                    now=now,
                )
                log.info("reconcile.not_found", **fields, delay_s=round(delay, 3))
        self._wake.set()

    # --- pause / resume on auth errors ------------------------------------------------------

    def _pause(self, reason: str, http_status: int | None) -> None:
        if self.paused:
            return
        self._unpaused.clear()
        log.error(
            "hub.paused",
            http_status=http_status,
            error=reason,
            hint="fix the token (token_env / token_file / credential), then SIGHUP",
        )
        self._spawn(self._probe_while_paused(), "probe")

    def _resume(self, why: str) -> None:
        if not self.paused:
            return
        self._unpaused.set()
        self._wake.set()
        self._track_wake.set()
        log.info("hub.resumed", reason=why)

    async def _probe_while_paused(self) -> None:
        last_log = time.monotonic()
        while self.paused and not self._stopping:
            await asyncio.sleep(min(self._probe_s, 60.0))
            if self._unpaused.is_set():
                return
            try:
                await self._call(self._client.list_runs, limit=1)
            except HubError as exc:
                if time.monotonic() - last_log >= 60:
                    last_log = time.monotonic()
                    log.warning("hub.paused", error=str(exc), still=True)
                continue
            self._resume("probe succeeded")

    # --- run tracking -----------------------------------------------------------------------

    async def _track_loop(self) -> None:
        """Poll submitted runs: every track_min_s while runs are new or changing, backing off
        to track_max_s while nothing changes. One pass per interval, however many submits."""
        interval = self._track_min_s
        while not self._stopping:
            self._track_wake.clear()
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline and not self._new_runs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._track_wake.wait(), min(self._track_min_s, deadline - time.monotonic())
                    )
                if self._track_wake.is_set() or self._stopping_now():
                    break
            if self._new_runs:
                self._new_runs = False
                interval = self._track_min_s
            if self._stopping_now():
                return
            await self._unpaused.wait()
            self.flush_submitted()
            drops = list(self._tracked.values())
            if not drops:
                interval = self._track_max_s
                continue
            changed = await self._poll_runs(drops)
            interval = self._track_min_s if changed else min(self._track_max_s, interval * 2)

    def _due_for_poll(self, d: Drop, now: float) -> bool:
        """Old runs are polled less often: every tenth of their age, at most every 5 minutes."""
        age = now - (d.submitted_at or d.created_at)
        last = self._last_polled.get(d.id, 0.0)
        return now - last >= min(300.0, max(self._track_min_s, age / 10))

    async def _poll_runs(self, drops: list[Drop]) -> bool:
        """Fetch run statuses (one list call per busy deployment) and apply every change."""
        now = time.time()
        recent: dict[str, list[Drop]] = defaultdict(list)
        singles: list[Drop] = []
        for d in drops:
            if now - (d.submitted_at or d.created_at) <= TRACK_LIST_WINDOW_S:
                recent[d.deployment_id or ""].append(d)
            elif self._due_for_poll(d, now):
                singles.append(d)
        runs: dict[str, Run] = {}
        for deployment_id, group in recent.items():
            if len(group) >= 3 and deployment_id:
                since = int(min(d.submitted_at or d.created_at for d in group))
                # Only runs that moved on: a RUNNING run needs no action, so a burst of
                # thousands of running runs costs one short listing, not pages of them.
                try:
                    listed = await self._call(
                        lambda dep=deployment_id, s=since - RECONCILE_SKEW_S: list(
                            self._client.iter_runs(
                                deployment_id=dep,
                                from_timestamp=s,
                                status=sorted(RUN_MOVED_ON),
                                order="ASCENDING",
                            )
                        )
                    )
                except HubError as exc:
                    log.warning("run.poll_failed", deployment_id=deployment_id, error=str(exc))
                    continue
                runs.update((r.id, r) for r in listed)
            else:
                singles.extend(group)
        fetched = await asyncio.gather(
            *(self._call(self._client.get_run, d.run_id) for d in singles if d.run_id),
            return_exceptions=True,
        )
        for result in fetched:
            if isinstance(result, Run):
                runs[result.id] = result
            elif isinstance(result, HubError):
                log.warning("run.poll_failed", error=str(result))
            elif isinstance(result, Exception):
                log.error("run.poll_failed", error=repr(result))
        changed = False
        finished: list[Drop] = []
        with self._ledger.batch():
            for d in drops:
                run = runs.get(d.run_id or "")
                if run is None:
                    continue
                self._last_polled[d.id] = now
                expected = RUN_STATUS_STATES.get(run.status, DropState.SUBMITTED)
                if run.status == d.run_status and d.state is expected:
                    continue
                changed = True
                updated = self._ledger.set_run_status(
                    d.id, run_status=run.status, response=json.dumps(run.log_fields()), now=now
                )
                if updated.state in (DropState.SUBMITTED, DropState.NEEDS_REVIEW):
                    self._tracked[updated.id] = updated
                else:
                    self._tracked.pop(updated.id, None)
                level = "info" if run.status in ("COMPLETE", "RUNNING") else "warning"
                getattr(log, level)(
                    "run.status",
                    rule=d.rule,
                    drop=d.drop,
                    drop_id=d.id,
                    run_id=run.id,
                    status=run.status,
                    previous_status=d.run_status,
                    response=run.log_fields(),
                )
                if run.status in RUN_TERMINAL:
                    self._last_polled.pop(d.id, None)
                    if self._post_action(updated) == "keep":
                        self._ledger.mark_post_action_done(d.id)
                    else:
                        finished.append(updated)
        for d in finished:
            await self._post_run(d)
        return changed

    # --- post-run actions -------------------------------------------------------------------

    async def _post_run(self, drop: Drop) -> None:
        """Apply on_complete / on_failure, only now that the run no longer reads the files."""
        rule = self._rules.get(drop.rule)
        if rule is None or drop.post_action_done:
            return
        action = self._post_action(drop)
        source = rule.watch / drop.drop
        fields = {"rule": drop.rule, "drop": drop.drop, "drop_id": drop.id, "action": action}
        try:
            if action == "delete":
                await asyncio.to_thread(shutil.rmtree, source)
            elif action.startswith("move:"):
                target = await asyncio.to_thread(_move_aside, source, Path(action[5:]), drop.id)
                fields["target"] = str(target)
        except OSError as exc:
            # Logged once; the drop stays where it is for an operator to handle.
            log.error("post_action.failed", **fields, error=repr(exc))
            self._ledger.mark_post_action_done(drop.id)
            return
        self._ledger.mark_post_action_done(drop.id)
        if action != "keep":
            self._ledger.archive(drop.id)
            self._known.discard((drop.rule, drop.drop))
            if self._forget is not None:
                self._forget(drop.rule, drop.drop)
            log.info("post_action.done", **fields)

    def _post_action(self, drop: Drop) -> str:
        rule = self._rules.get(drop.rule)
        if rule is None:
            return "keep"
        return rule.on_complete if drop.state is DropState.COMPLETE else rule.on_failure

    def _remove_marker(self, rule: Rule, drop: str) -> None:
        if not rule.ready_marker:
            return
        marker = rule.watch / f"{drop}{rule.ready_marker}"
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()

    # --- housekeeping -----------------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        """Forget finished drops whose folder is gone, so a new drop of the same name is new."""
        while not self._stopping:
            await asyncio.sleep(self._housekeeping_s)
            finished = [d for d in self._ledger.active_drops() if d.state in TERMINAL]
            pairs = [(d, self._rules.get(d.rule)) for d in finished]
            gone = await asyncio.to_thread(_missing, pairs, dict(self._root_dev))
            gone_ids = {d.id for d in gone}
            for drop_id in list(self._missing_rounds):
                if drop_id not in gone_ids:
                    del self._missing_rounds[drop_id]
            for d in gone:
                rounds = self._missing_rounds.get(d.id, 0) + 1
                self._missing_rounds[d.id] = rounds
                if rounds < MISSING_ROUNDS:
                    continue
                del self._missing_rounds[d.id]
                self._ledger.archive(d.id)
                self._known.discard((d.rule, d.drop))
                if self._forget is not None:
                    self._forget(d.rule, d.drop)
                log.info("drop.forgotten", rule=d.rule, drop=d.drop, drop_id=d.id)

    # --- shutdown ---------------------------------------------------------------------------

    async def drain(self, timeout_s: float) -> int:
        """Stop taking drops; let in-flight requests finish within `timeout_s`.

        Returns how many were still in flight at the deadline (they stay `submitting` in the
        ledger and are reconciled at the next start).
        """
        self._stopping = True
        self._wake.set()
        self._track_wake.set()
        pending = set(self._inflight)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout_s)
        for task in pending | self._background:
            task.cancel()
        self.flush_ready()
        self.flush_submitted()
        self._pool.shutdown(wait=False, cancel_futures=True)
        return len(pending)

    def close(self) -> None:
        for client in [*self._retired_clients, self._client]:
            client.close()


def _move_aside(source: Path, target_dir: Path, drop_id: str) -> Path:
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    if target.exists():
        target = target_dir / f"{source.name}-{drop_id}"
    shutil.move(str(source), str(target))
    return target


def _missing(pairs: Iterable[tuple[Drop, Rule | None]], root_dev: Mapping[str, int]) -> list[Drop]:
    """Drops whose folder is gone from a watch root that is itself present and the same mount.

    An unmounted share (root missing, or an empty mountpoint on another device) proves nothing.
    """
    roots_ok: dict[str, bool] = {}
    out: list[Drop] = []
    for d, rule in pairs:
        if rule is None:
            continue
        if rule.name not in roots_ok:
            try:
                dev = os.stat(rule.watch).st_dev
            except OSError:
                roots_ok[rule.name] = False
            else:
                roots_ok[rule.name] = root_dev.get(rule.name, dev) == dev
        if roots_ok[rule.name] and not (rule.watch / d.drop).exists():
            out.append(d)
    return out


def counts_text(counts: Mapping[str, int]) -> str:
    """One short line for systemd's STATUS=."""
    order = ("ready", "submitting", "submitted", "complete", "failed", "rejected", "needs_review")
    parts = [f"{k} {counts.get(k, 0)}" for k in order if counts.get(k)]
    return ", ".join(parts) or "idle"
