"""Reconcile: settle POSTs whose outcome is unknown by listing the deployment's runs.

A drop left `submitting` (lost response, crash) is never posted again until a listing has come
back without its run. Imports the pipeline's parts below it, the hub adapter and the ledger.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import structlog

from watcher.hub.client import HubClient
from watcher.hub.errors import HubAuthError, HubError
from watcher.hub.models import Run
from watcher.hub.policy import OUTAGE_AFTER, backoff_delay_s
from watcher.model import Drop, DropState
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.failures import rule_gone_error
from watcher.pipeline.fsops import marker_path, remove_marker_off_loop
from watcher.pipeline.gate import Gate
from watcher.pipeline.state import PipelineState, Unsettled
from watcher.pipeline.tags import drop_tag, is_drop_tag

log = structlog.get_logger("watcher.pipeline")

# How far back (seconds) to list runs when looking for one we may have created: covers clock
# skew between this host and AI Hub.
RECONCILE_SKEW_S = 600
# An untagged run is only adopted when it started at most this long before the intent.
UNTAGGED_SLACK_S = 60


class Reconciler:
    """Adopts runs that a lost response or a crash left unrecorded; re-arms the rest."""

    def __init__(self, state: PipelineState, *, calls: HubCalls, gate: Gate) -> None:
        self._state = state
        self._calls = calls
        self._gate = gate
        self._failures = 0

    def load_left_submitting(self) -> None:
        """Startup: every drop left `submitting` is listed for before anything else."""
        left = self._state.ledger.take(DropState.SUBMITTING)
        if left:
            log.info("reconcile.startup", drops=len(left))
            self._state.needs_reconcile.update(
                {d.id: Unsettled(0.0, "left submitting by a stop or crash") for d in left}
            )

    async def run_due(self) -> None:
        """List the runs of each deployment with drops due for reconcile; adopt or re-arm."""
        for deployment_id, group in self._due_groups().items():
            since = int(min(d.created_at for d in group)) - RECONCILE_SKEW_S
            try:
                runs = await self._calls.call(_listing(deployment_id, since))
            except HubError as exc:
                self._listing_failed(deployment_id, group, exc)
                continue
            self._failures = 0
            self.adopt_or_rearm(group, runs)

    def _due_groups(self) -> dict[str, list[Drop]]:
        state = self._state
        now_mono = time.monotonic()
        groups: dict[str, list[Drop]] = defaultdict(list)
        due = [i for i, u in state.needs_reconcile.items() if u.due_mono <= now_mono]
        for drop_id in due:
            d = state.ledger.get(drop_id)
            if d is None or d.state is not DropState.SUBMITTING:
                state.needs_reconcile.pop(drop_id, None)
                continue
            rule = state.rules.get(d.rule)
            groups[d.deployment_id or (rule.deployment_id if rule else "")].append(d)
        return groups

    def _listing_failed(self, deployment_id: str, group: list[Drop], exc: HubError) -> None:
        self._failures += 1
        retry_in = backoff_delay_s(self._failures, base_s=2.0, cap_s=120.0)
        for d in group:
            self._state.needs_reconcile[d.id].due_mono = time.monotonic() + retry_in
        log.warning(
            "reconcile.failed",
            deployment_id=deployment_id,
            drops=len(group),
            retry_in_s=round(retry_in, 3),
            error=str(exc),
        )
        if isinstance(exc, HubAuthError):
            self._gate.pause(str(exc), exc.http_status)

    def adopt_or_rearm(self, group: Iterable[Drop], runs: list[Run]) -> None:
        """Each drop adopts its run from `runs` (a listing of its deployment), or is re-armed."""
        by_tag: dict[str, list[Run]] = defaultdict(list)
        for run in runs:
            for tag in run.tags:
                if is_drop_tag(tag):
                    by_tag[tag].append(run)
        untagged = {
            run.input_dir: run
            for run in runs
            if run.input_dir and not any(is_drop_tag(t) for t in run.tags)
        }
        now = time.time()
        for d in group:
            unsettled = self._state.needs_reconcile.pop(d.id, None)
            found = _oldest_tagged(d, by_tag.get(drop_tag(d.id), []))
            if found is None:
                found = _untagged_match(d, untagged.get(d.input_dir or ""), now)
            if found is not None:
                self._adopt(d, found, now)
            else:
                self._rearm(d, now, unsettled)
        self._state.wake_submit.set()

    def _adopt(self, d: Drop, run: Run, now: float) -> None:
        state = self._state
        adopted = state.ledger.mark_submitted(
            d.id,
            run_id=run.id,
            run_status=run.status,
            response=json.dumps(run.log_fields()),
            now=now,
        )
        state.tracked[adopted.id] = adopted
        state.metrics.run_started(d.rule, now - d.created_at)
        log.info(
            "run.adopted",
            rule=d.rule,
            drop=d.drop,
            drop_id=d.id,
            run_id=run.id,
            status=run.status,
            deployment_id=adopted.deployment_id,
            input_dir=d.input_dir,
            response=run.log_fields(),
        )
        marker = marker_path(d, state.rules.get(d.rule))
        if marker is not None:
            state.spawn(remove_marker_off_loop(marker, drop_id=d.id), "marker")
        state.wake_track.set()

    def _rearm(self, d: Drop, now: float, unsettled: Unsettled | None) -> None:
        """No run: the POST provably created nothing. Count it as a failed attempt, except in
        an outage, when drops must not be burned (the hub-wide hold paces them)."""
        fields = {"rule": d.rule, "drop": d.drop, "drop_id": d.id}
        error = f"{unsettled.error if unsettled else 'no answer'}; no run found"
        ledger = self._state.ledger
        if self._gate.unwell_in_row >= OUTAGE_AFTER:
            ledger.release(d.id, now=now)
            log.info("reconcile.not_found", **fields, counted=False, error=error)
            return
        rule = self._state.rules.get(d.rule)
        if rule is None:
            ledger.mark_failed(d.id, error=rule_gone_error(d.rule), now=now)
            log.error("submit.gave_up", **fields, error=rule_gone_error(d.rule))
            return
        if d.attempts >= rule.max_attempts:
            ledger.mark_failed(d.id, error=error, now=now)
            log.error("submit.gave_up", **fields, error="retries exhausted", last_error=error)
            return
        delay = backoff_delay_s(d.attempts)
        ledger.schedule_retry(d.id, next_attempt_at=now + delay, error=error, now=now)
        log.info("reconcile.not_found", **fields, delay_s=round(delay, 3), error=error)


def _listing(deployment_id: str, since: int) -> Callable[[HubClient], list[Run]]:
    """Every run of the deployment since `since` (Unix seconds), oldest first."""

    def request(client: HubClient) -> list[Run]:
        return list(
            client.iter_runs(deployment_id=deployment_id, from_timestamp=since, order="ASCENDING")
        )

    return request


def _oldest_tagged(d: Drop, tagged: list[Run]) -> Run | None:
    """The oldest run carrying the drop's tag; more than one is a duplicate, logged as such."""
    if not tagged:
        return None
    tagged = sorted(tagged, key=lambda r: r.start_timestamp or 0)
    if len(tagged) > 1:
        log.error(
            "run.duplicate",
            rule=d.rule,
            drop=d.drop,
            drop_id=d.id,
            run_ids=[r.id for r in tagged],
            hint="adopted the oldest; cancel the others in AI Hub",
        )
    return tagged[0]


def _untagged_match(d: Drop, candidate: Run | None, now: float) -> Run | None:
    """A run without any drop tag on the drop's input_dir (a hub that drops tags), trusted only
    when it started after we recorded the intent."""
    if candidate is None:
        return None
    started_s = (candidate.start_timestamp or 0) / 1e9
    if started_s >= (d.intent_at or now) - UNTAGGED_SLACK_S:
        return candidate
    return None
