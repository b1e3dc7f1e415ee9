"""Reconcile: settle POSTs whose outcome is unknown by listing the deployment's runs.

A drop left `submitting` (lost response, crash) is never posted again until a listing has come
back without its run. Imports the pipeline's parts below it, the hub adapter and the ledger.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable

import structlog

from watcher.hub.errors import HubAuthError, HubError
from watcher.hub.models import Run
from watcher.hub.policy import backoff_delay_s
from watcher.model import Drop, DropState
from watcher.pipeline.calls import HubCalls
from watcher.pipeline.fsops import remove_marker
from watcher.pipeline.gate import Gate
from watcher.pipeline.state import PipelineState
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
        left = self._state.ledger.in_state(DropState.SUBMITTING)
        if left:
            log.info("reconcile.startup", drops=len(left))
            self._state.needs_reconcile.update({d.id: 0.0 for d in left})

    async def run_due(self) -> None:
        """List the runs of each deployment with drops due for reconcile; adopt or re-arm."""
        for deployment_id, group in self._due_groups().items():
            since = int(min(d.created_at for d in group)) - RECONCILE_SKEW_S
            client = self._calls.client
            try:
                runs = await self._calls.call(
                    lambda c=client, dep=deployment_id, s=since: list(
                        c.iter_runs(deployment_id=dep, from_timestamp=s, order="ASCENDING")
                    )
                )
            except HubError as exc:
                self._listing_failed(deployment_id, group, exc)
                continue
            self._failures = 0
            self.adopt_or_rearm(group, runs)

    def _due_groups(self) -> dict[str, list[Drop]]:
        state = self._state
        now_mono = time.monotonic()
        groups: dict[str, list[Drop]] = defaultdict(list)
        for drop_id in [i for i, t in state.needs_reconcile.items() if t <= now_mono]:
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
            self._state.needs_reconcile[d.id] = time.monotonic() + retry_in
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
            self._state.needs_reconcile.pop(d.id, None)
            found = _oldest_tagged(d, by_tag.get(drop_tag(d.id), []))
            if found is None:
                found = _untagged_match(d, untagged.get(d.input_dir or ""), now)
            if found is not None:
                self._adopt(d, found, now)
            else:
                self._rearm(d, now)
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
        rule = state.rules.get(d.rule)
        if rule is not None:
            remove_marker(rule, d.drop)
        state.wake_track.set()

    def _rearm(self, d: Drop, now: float) -> None:
        fields = {"rule": d.rule, "drop": d.drop, "drop_id": d.id}
        rule = self._state.rules.get(d.rule)
        max_attempts = rule.max_attempts if rule is not None else d.attempts
        if d.attempts >= max_attempts:
            self._state.ledger.mark_failed(d.id, error=d.last_error or "no run found", now=now)
            log.error("submit.gave_up", **fields, error="retries exhausted")
            return
        delay = backoff_delay_s(d.attempts)
        self._state.ledger.schedule_retry(
            d.id,
            next_attempt_at=now + delay,
            error=d.last_error or "no response; no run found",
            now=now,
        )
        log.info("reconcile.not_found", **fields, delay_s=round(delay, 3))


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
