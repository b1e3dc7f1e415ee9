"""What the submitter does with the policy's answer to a failed POST.

`hub.policy.next_step` decides; this only carries it out: ledger transitions, hub-wide holds,
the pause, reconcile later, and one log line. Imports the pipeline's state and gate.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog

from watcher.config import Rule
from watcher.hub.errors import HubError, HubStatusError
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
from watcher.metrics import Outcome
from watcher.model import Drop
from watcher.pipeline.gate import Gate
from watcher.pipeline.state import PipelineState, Unsettled

log = structlog.get_logger("watcher.pipeline")

# What each step of the policy counts as in the metrics.
_OUTCOMES: dict[type[Step], Outcome] = {
    HoldAll: "throttled",
    OutageBackoff: "retried",
    Retry: "retried",
    Reconcile: "ambiguous",
    PauseHub: "unauthorized",
    Reject: "rejected",
    GiveUp: "gave_up",
}

# A lost response is listed for only once a response could no longer be on its way.
MAX_RECONCILE_WAIT_S = 30.0


def rule_gone_error(rule: str) -> str:
    """The `failed` reason of a drop whose rule is no longer in the config."""
    return f"rule {rule!r} is no longer in the config; restore it and run `aihub-watcher retry`"


class FailedPost:
    """Acts on the policy's answer for one failed POST."""

    def __init__(self, state: PipelineState, *, gate: Gate) -> None:
        self._state = state
        self._gate = gate

    def handle(
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
        self._state.metrics.submitted(drop.rule, _OUTCOMES[type(step)], latency_ms / 1000)
        match step:
            case HoldAll(delay_s):
                # The throttle is about all of us, not this drop: the attempt does not count.
                self._gate.hold_all(delay_s)
                ledger.release(drop.id, now=now)
                log.warning(
                    "submit.throttled", **fields, delay_s=round(delay_s, 3), latency_ms=latency_ms
                )
            case OutageBackoff(delay_s):
                self._hold_for_outage(delay_s, fields, error)
                ledger.release(drop.id, now=now)
            case Retry(delay_s):
                ledger.schedule_retry(drop.id, next_attempt_at=now + delay_s, error=error, now=now)
                log.warning(
                    "submit.retry",
                    **fields,
                    delay_s=round(delay_s, 3),
                    latency_ms=latency_ms,
                    error=error,
                )
            case Reconcile(hold_s=hold_s):
                if hold_s is not None:
                    self._hold_for_outage(hold_s, fields, error)
                self._reconcile_later(drop, fields, error, latency_ms)
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
        self._state.wake_submit.set()

    def _hold_for_outage(self, delay_s: float, fields: dict[str, Any], error: str) -> None:
        """An outage, not a bad drop: back off hub-wide instead of burning attempts."""
        self._gate.hold_all(delay_s)
        log.warning(
            "hub.unavailable",
            **fields,
            failures_in_row=self._gate.unwell_in_row,
            delay_s=round(delay_s, 3),
            error=error,
        )

    def _reconcile_later(
        self, drop: Drop, fields: dict[str, Any], error: str, latency_ms: float
    ) -> None:
        """The run may exist: list for it once an answer could no longer be on its way."""
        wait = min(self._state.config.hub.timeout_seconds, MAX_RECONCILE_WAIT_S)
        self._state.needs_reconcile[drop.id] = Unsettled(time.monotonic() + wait, error)
        log.warning(
            "submit.ambiguous", **fields, latency_ms=latency_ms, error=error, reconcile_in_s=wait
        )
