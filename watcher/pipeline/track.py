"""Track: poll submitted runs until they end, record each status change once, hand ended runs on.

Imports the pipeline's parts below it, the hub adapter and the ledger; never detect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Callable

import structlog

from watcher.hub.client import HubClient
from watcher.hub.errors import HubError
from watcher.hub.models import Run
from watcher.ledger import ClaimLostError
from watcher.model import RUN_MOVED_ON, RUN_STATUS_STATES, RUN_TERMINAL, Drop, DropState
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.finish import Finisher
from watcher.pipeline.gate import Gate
from watcher.pipeline.reconcile import RECONCILE_SKEW_S
from watcher.pipeline.state import BEAT_S, PipelineState

log = structlog.get_logger("watcher.pipeline")

# Runs submitted within this window are tracked with one list call per deployment; older ones
# (long runs, runs waiting for review) with a get per run, less and less often.
TRACK_LIST_WINDOW_S = 900
# A deployment with at least this many recent runs is polled with one listing, not gets.
LIST_AT_LEAST = 3
# An old run is polled every tenth of its age, but at least this often.
MAX_POLL_INTERVAL_S = 300.0


class Tracker:
    """Polls every track_min_s while runs are new or changing, backing off to track_max_s."""

    def __init__(
        self,
        state: PipelineState,
        *,
        calls: HubCalls,
        gate: Gate,
        finisher: Finisher,
        wants_results: Callable[[Drop], bool],
        flush_submitted: Callable[[], None],
        min_s: float,
        max_s: float,
    ) -> None:
        self._state = state
        self._calls = calls
        self._gate = gate
        self._finisher = finisher
        self._wants_results = wants_results
        self._flush_submitted = flush_submitted
        self._min_s = min_s
        self._max_s = max_s
        self._last_polled: dict[str, float] = {}

    def load_tracked(self) -> None:
        """Startup: every run the ledger says is running or waiting for review is tracked."""
        ledger = self._state.ledger
        self._state.tracked = {
            d.id: d for d in ledger.take(DropState.SUBMITTED, DropState.NEEDS_REVIEW)
        }

    async def run(self) -> None:
        """One pass per interval, however many submissions happen in between."""
        state = self._state
        interval = self._min_s
        while not state.stopping:
            state.beat("track")
            await self._wait(interval)
            if state.new_runs:
                state.new_runs = False
                interval = self._min_s
            if state.is_stopping():
                return
            if not await self._gate.wait_unpaused(BEAT_S):
                continue
            self._flush_submitted()
            drops = list(state.tracked.values())
            if not drops:
                interval = self._max_s
                continue
            changed = await self.poll(drops)
            interval = self._min_s if changed else min(self._max_s, interval * 2)

    async def _wait(self, interval: float) -> None:
        """Until `interval` has passed, or `min_s` once new runs were submitted: new runs are
        looked at within min_s, but not at once, so a burst of submissions gets one pass per
        min_s and not a pass over every tracked run after each POST (bench/PERF13.md)."""
        state = self._state
        state.wake_track.clear()
        start = time.monotonic()
        deadline = start + interval
        while time.monotonic() < deadline:
            if state.new_runs:
                deadline = min(deadline, start + self._min_s)
                if time.monotonic() >= deadline:
                    return
            state.beat("track")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self._min_s, BEAT_S, deadline - time.monotonic())):
                    await state.wake_track.wait()
            if state.wake_track.is_set() or state.is_stopping():
                return

    def _due_for_poll(self, d: Drop, now: float) -> bool:
        """Old runs are polled less often: every tenth of their age, at most every 5 minutes."""
        age = now - (d.submitted_at or d.created_at)
        last = self._last_polled.get(d.id, 0.0)
        return now - last >= min(MAX_POLL_INTERVAL_S, max(self._min_s, age / 10))

    async def poll(self, drops: list[Drop]) -> bool:
        """Fetch run statuses and apply every change; True when anything changed."""
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
            if len(group) >= LIST_AT_LEAST and deployment_id:
                runs.update(await self._list_moved_on(deployment_id, group))
            else:
                singles.extend(group)
        runs.update(await self._get_each(singles))
        return await self._apply(drops, runs, now)

    async def _list_moved_on(self, deployment_id: str, group: list[Drop]) -> dict[str, Run]:
        # Only runs that moved on: a RUNNING run needs no action, so a burst of thousands of
        # running runs costs one short listing, not pages of them.
        since = int(min(d.submitted_at or d.created_at for d in group)) - RECONCILE_SKEW_S
        try:
            listed = await self._calls.call(
                lambda c: list(
                    c.iter_runs(
                        deployment_id=deployment_id,
                        from_timestamp=since,
                        status=sorted(RUN_MOVED_ON),
                        order="ASCENDING",
                    )
                )
            )
        except HubError as exc:
            log.warning("run.poll_failed", deployment_id=deployment_id, error=str(exc))
            return {}
        return {r.id: r for r in listed}

    async def _get_each(self, drops: list[Drop]) -> dict[str, Run]:
        fetched = await asyncio.gather(
            *(self._calls.call(_get_run(d.run_id)) for d in drops if d.run_id),
            return_exceptions=True,
        )
        runs: dict[str, Run] = {}
        for result in fetched:
            if isinstance(result, Run):
                runs[result.id] = result
            elif isinstance(result, HubError):
                log.warning("run.poll_failed", error=str(result))
            elif isinstance(result, Exception):
                log.error("run.poll_failed", error=repr(result))
        return runs

    async def _apply(self, drops: list[Drop], runs: dict[str, Run], now: float) -> bool:
        changed = False
        finished: list[Drop] = []
        with self._state.ledger.batch():
            for d in drops:
                run = runs.get(d.run_id or "")
                if run is None:
                    continue
                self._last_polled[d.id] = now
                expected = RUN_STATUS_STATES.get(run.status, DropState.SUBMITTED)
                if run.status == d.run_status and d.state is expected:
                    continue
                changed = True
                try:
                    updated = self._record(d, run, now)
                except ClaimLostError as exc:  # another host tracks it now
                    self._state.tracked.pop(d.id, None)
                    log.warning("claim.lost", drop_id=d.id, error=str(exc))
                    continue
                if run.status in RUN_TERMINAL:
                    self._state.metrics.run_finished(d.rule, run.status)
                    self._last_polled.pop(d.id, None)
                    self._ended(updated, finished)
        for d in finished:
            await self._finisher.post_run(d)
        return changed

    def _ended(self, d: Drop, finished: list[Drop]) -> None:
        """A run ended: its results first (if wanted), then the post-run work, or done."""
        ledger = self._state.ledger
        if d.state is DropState.COMPLETE and self._wants_results(d):
            ledger.stages.results_pending(d.id, now=time.time())
            self._state.wake_stages.set()
        elif self._finisher.needs_work(d):
            finished.append(d)
        else:
            ledger.mark_post_action_done(d.id)

    def _record(self, d: Drop, run: Run, now: float) -> Drop:
        state = self._state
        updated = state.ledger.set_run_status(
            d.id, run_status=run.status, response=json.dumps(run.log_fields()), now=now
        )
        if updated.state in (DropState.SUBMITTED, DropState.NEEDS_REVIEW):
            state.tracked[updated.id] = updated
        else:
            state.tracked.pop(updated.id, None)
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
        return updated


def _get_run(run_id: str) -> Callable[[HubClient], Run]:
    def request(client: HubClient) -> Run:
        return client.get_run(run_id)

    return request
