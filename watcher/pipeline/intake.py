"""Intake: a complete drop from the detector becomes a `ready` ledger row, once.

Imports the pipeline's state, the ledger and the core; never detect (it meets us in `model`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import structlog

from watcher.config import input_dir_for
from watcher.model import TERMINAL, DropState, ReadyDrop
from watcher.pipeline.state import PipelineState

log = structlog.get_logger("watcher.pipeline")


class Intake:
    """Records ready drops; drops that become ready in one loop turn share one transaction."""

    def __init__(self, state: PipelineState) -> None:
        self._state = state
        self._pending: list[ReadyDrop] = []
        # (drop id, fingerprint) pairs already warned about, so a changed drop warns once.
        self._change_warned: set[tuple[str, str]] = set()

    def load_known(self) -> None:
        """Startup: every live ledger row is known, so the detector skips what is recorded."""
        active = self._state.ledger.active_drops()
        self._state.known.update((d.rule, d.drop) for d in active)
        for rule_name in sorted({d.rule for d in active} - set(self._state.rules)):
            log.warning(
                "rule.missing",
                rule=rule_name,
                hint="drops of this rule are in the ledger but the rule is not in the config",
            )

    def is_known(self, rule: str, drop: str) -> bool:
        """True when the ledger has a live row for this drop (safe from any thread)."""
        return (rule, drop) in self._state.known

    async def on_ready(self, ready: ReadyDrop) -> None:
        """A complete drop from the detector: record it; the submit loop takes it from here."""
        if ready.rule not in self._state.rules:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(ready)
        self._state.known.add((ready.rule, ready.drop))

    def flush(self) -> None:
        """Write every pending ready drop in one transaction, then wake the submit loop."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        with self._state.ledger.batch():
            for ready in pending:
                self._record(ready)
        self._state.wake_submit.set()

    def _record(self, ready: ReadyDrop) -> None:
        state = self._state
        rule = state.rules[ready.rule]
        if rule.name not in state.root_dev:
            with contextlib.suppress(OSError):
                state.root_dev[rule.name] = os.stat(rule.watch).st_dev
        fingerprint = ready.scan.fingerprint()
        existing = state.ledger.find_active(ready.rule, ready.drop)
        fields = {"rule": ready.rule, "drop": ready.drop}
        if existing is None:
            drop = state.ledger.record_ready(
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
            state.ledger.update_fingerprint(existing.id, fingerprint)
            log.info("drop.updated", **fields, drop_id=existing.id, fingerprint=fingerprint[:16])
            return
        if rule.on_change == "resubmit" and existing.state in TERMINAL:
            drop = state.ledger.resubmit(existing.id, fingerprint)
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
